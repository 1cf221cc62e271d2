"""Datasets and spike encoders (neurohw.data)."""
import numpy as np
import pytest

from neurohw import data


# ----------------------------------------------------------------------------- Yin-Yang

def _geometry_class(x, y, r_small=0.1, r_big=0.5):
    """The regions written from the picture, not from the reference's criteria: the dots;
    else label 1 for the left half-size disc or the upper half outside the right one."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    left = np.hypot(x - 0.5 * r_big, y - r_big)
    right = np.hypot(x - 1.5 * r_big, y - r_big)
    dots = (left < r_small) | (right < r_small)
    upper_half = y > r_big
    one = (left <= 0.5 * r_big) | (upper_half & (right > 0.5 * r_big))
    return np.where(dots, 2, one.astype(np.int64))


def _reference_sampler(n, seed, r_small=0.1, r_big=0.5):
    """The published sampling scheme, step by step: class first, then rejection."""
    rng = np.random.RandomState(seed)
    out = []
    for _ in range(n):
        goal = rng.randint(3)
        while True:
            x, y = rng.rand(2) * 2.0 * r_big
            if np.hypot(x - r_big, y - r_big) > r_big:
                continue
            if int(_geometry_class(x, y, r_small, r_big)) == goal:
                break
        out.append((x, y, goal))
    return np.array(out)


@pytest.fixture(scope="module")
def yy_train():
    return data.yin_yang(5000, 42)


def test_yin_yang_dtypes_and_balance(yy_train):
    x, y = yy_train
    assert x.shape == (5000, 4) and x.dtype == np.float32
    assert y.shape == (5000,) and y.dtype == np.int64
    counts = np.bincount(y, minlength=3)
    assert len(counts) == 3
    assert np.all(np.abs(counts - 5000 / 3) <= 0.05 * 5000 / 3), counts


def test_yin_yang_inside_big_circle_and_mirrored_features(yy_train):
    x, _ = yy_train
    assert np.all((x[:, 0] - 0.5) ** 2 + (x[:, 1] - 0.5) ** 2 <= 0.25 + 1e-6)
    np.testing.assert_allclose(x[:, 0] + x[:, 2], 1.0, atol=1e-6)
    np.testing.assert_allclose(x[:, 1] + x[:, 3], 1.0, atol=1e-6)


def test_yin_yang_regions_match_geometry(yy_train):
    x, y = yy_train
    np.testing.assert_array_equal(_geometry_class(x[:, 0], x[:, 1]), y)
    # hand-picked points: the two dots, left half-disc, upper-right, lower-right
    pts = [(0.25, 0.5, 2), (0.75, 0.5, 2), (0.25, 0.65, 1), (0.1, 0.5, 1),
           (0.75, 0.9, 1), (0.9, 0.5, 0), (0.5, 0.1, 0), (0.75, 0.3, 0)]
    for px, py, c in pts:
        assert data.yin_yang_class(px, py) == c == _geometry_class(px, py), (px, py)


def test_yin_yang_reproduces_published_sampler():
    x, y = data.yin_yang(200, 7)
    ref = _reference_sampler(200, 7)
    np.testing.assert_array_equal(x[:, :2], ref[:, :2].astype(np.float32))
    np.testing.assert_array_equal(y, ref[:, 2].astype(np.int64))


def test_yin_yang_splits_reproducible_and_distinct():
    s1, s2 = data.yin_yang_splits(), data.yin_yang_splits()
    assert {k: len(v[1]) for k, v in s1.items()} == {"train": 5000, "validation": 1000, "test": 1000}
    for k in s1:
        np.testing.assert_array_equal(s1[k][0], s2[k][0])
        np.testing.assert_array_equal(s1[k][1], s2[k][1])
    np.testing.assert_array_equal(s1["train"][0], data.yin_yang(5000, 42)[0])
    np.testing.assert_array_equal(s1["test"][0], data.yin_yang(1000, 40)[0])
    assert not np.array_equal(s1["validation"][0], s1["test"][0])
    assert not np.array_equal(s1["train"][0][:1000], s1["validation"][0])


# ----------------------------------------------------------------------------- digits

def test_digits_fixed_stratified_split():
    a, b = data.digits(), data.digits()
    assert a["x_train"].shape == (1347, 64) and a["x_test"].shape == (450, 64)
    assert a["y_train"].dtype == np.int64
    assert a["x_train"].min() >= 0.0 and a["x_train"].max() <= 1.0
    np.testing.assert_array_equal(a["idx_train"], b["idx_train"])
    np.testing.assert_array_equal(a["idx_test"], b["idx_test"])
    assert len(np.union1d(a["idx_train"], a["idx_test"])) == 1797
    c = data.digits(seed=1)
    assert not np.array_equal(a["idx_test"], c["idx_test"])
    n_tr = np.bincount(a["y_train"], minlength=10)
    n_te = np.bincount(a["y_test"], minlength=10)
    assert np.all(np.abs(n_te - (n_tr + n_te) * 450 / 1797) <= 1.0), n_te


# ----------------------------------------------------------------------------- encoders

def test_latency_exact_times_and_bias():
    x = np.array([[1.0, 0.0, 0.5, 0.25, 0.75]])
    r = data.latency_encode(x, steps=11)
    assert r.shape == (1, 11, 6) and r.dtype == np.uint8
    assert np.all(r.sum(axis=1) == 1)                     # exactly one spike per channel
    # t = round(10 * (1 - x)), half up: 0, 10, 5, 7.5 -> 8, 2.5 -> 3; bias at t_min = 0
    np.testing.assert_array_equal(r[0].argmax(axis=0), [0, 10, 5, 8, 3, 0])

    r = data.latency_encode(np.array([[0.0, -1.0, 1.0]]), steps=20, t_min=2, t_max=12,
                            lo=-1.0, hi=1.0)
    np.testing.assert_array_equal(r[0].argmax(axis=0), [7, 12, 2, 2])
    assert r[0, :2].sum() == 0 and r[0, 13:].sum() == 0

    r = data.latency_encode(np.array([[0.5, 0.5]]), steps=5, bias_spike=False)
    assert r.shape == (1, 5, 2)
    np.testing.assert_array_equal(r[0].argmax(axis=0), [2, 2])


def test_latency_flattens_images():
    img = np.random.default_rng(0).random((3, 8, 8))
    r = data.latency_encode(img, steps=16)
    assert r.shape == (3, 16, 65)
    assert np.all(r.sum(axis=1) == 1)


@pytest.mark.parametrize("bad", [1.5, -0.1, np.nan])
def test_latency_rejects_out_of_range(bad):
    with pytest.raises(ValueError, match=r"value .* outside the range \[0\.0, 1\.0\]"):
        data.latency_encode(np.array([[0.2, bad]]), steps=10)
    with pytest.raises(ValueError, match=r"1\.5 .*\[-1\.0, 1\.0\]"):
        data.latency_encode(np.array([[1.5]]), steps=10, lo=-1.0, hi=1.0)


def test_latency_rejects_bad_window():
    with pytest.raises(ValueError):
        data.latency_encode(np.array([[0.5]]), steps=10, t_max=10)


def test_rate_encode_mean_rate():
    x = np.full((4, 50), 0.3)
    r = data.rate_encode(x, steps=1000, seed=3, max_rate=0.5)
    assert r.shape == (4, 1000, 50) and r.dtype == np.uint8
    p = 0.15
    se = np.sqrt(p * (1 - p) / r.size)
    assert abs(r.mean() - p) < 4 * se
    np.testing.assert_array_equal(r, data.rate_encode(x, steps=1000, seed=3, max_rate=0.5))
    edge = data.rate_encode(np.array([[0.0, 1.0]]), steps=100, seed=0)
    assert edge[0, :, 0].sum() == 0 and edge[0, :, 1].sum() == 100
    with pytest.raises(ValueError, match=r"1\.2"):
        data.rate_encode(np.array([[1.2]]), steps=10, seed=0)


# ----------------------------------------------------------------------------- dithering / matching

def test_floyd_steinberg_known_cases():
    assert np.all(data.floyd_steinberg(np.zeros((5, 7))) == 0)
    assert np.all(data.floyd_steinberg(np.ones((5, 7))) == 1)
    # worked by hand: 0.5 -> 1 (err -0.5), right 0.28 -> 0, below-left 0.40 -> 0, last 0.73 -> 1
    np.testing.assert_array_equal(data.floyd_steinberg(np.full((2, 2), 0.5)), [[1, 0], [0, 1]])
    # one row, only the 7/16 term acts: 0.6 -> 1, 0.425 -> 0, 0.786 -> 1, 0.506 -> 1
    np.testing.assert_array_equal(data.floyd_steinberg(np.full((1, 4), 0.6)), [[1, 0, 1, 1]])
    half = data.floyd_steinberg(np.full((40, 40), 0.5))
    assert abs(half.mean() - 0.5) < 0.01
    grad = np.tile(np.linspace(0.0, 1.0, 64), (64, 1))
    assert abs(data.floyd_steinberg(grad).mean() - grad.mean()) < 0.01
    with pytest.raises(ValueError):
        data.floyd_steinberg(np.full((2, 2), 1.1))


def test_spike_train_matching():
    t = data.spike_train_matching()
    assert t.inputs.shape == (198, 200) and t.inputs.dtype == np.uint8
    assert t.target.shape == (198, 200) and t.target.dtype == np.uint8
    assert set(np.unique(t.target)) <= {0, 1}
    assert t.image.shape == (200, 198) and 0.0 <= t.image.min() and t.image.max() <= 1.0
    p = 50 * 1.0 / 1000
    se_hz = np.sqrt(p * (1 - p) / t.inputs.size) * 1000 / t.dt_ms
    assert abs(t.inputs.mean() * 1000 / t.dt_ms - 50.0) < 4 * se_hz
    assert abs(t.target.mean() - t.image.mean()) < 0.01
    np.testing.assert_array_equal(t.target, data.floyd_steinberg(t.image).T)
    t2, t3 = data.spike_train_matching(seed=0), data.spike_train_matching(seed=1)
    np.testing.assert_array_equal(t.inputs, t2.inputs)
    assert not np.array_equal(t.inputs, t3.inputs)
    np.testing.assert_array_equal(t.target, t3.target)       # target is seed-independent
