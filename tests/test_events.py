"""Event-camera digits and the interval task (neurohw.events)."""
import numpy as np
import pytest

from neurohw import data, events


def test_saccade_path_is_a_closed_triangle():
    p = events.saccade_path(4, 1.5)
    assert p.shape == (13, 2)
    np.testing.assert_allclose(p[[0, 4, 8, 12]], [[0, 0], [1.5, 1.5], [0, 3.0], [0, 0]])
    steps = np.linalg.norm(np.diff(p, axis=0), axis=1)            # constant speed within a saccade
    for i in range(3):
        np.testing.assert_allclose(steps[4 * i:4 * i + 4], steps[4 * i])


def test_dvs_pixel_counts_thresholds_of_log_intensity():
    eps, th = 0.05, 0.2
    # one pixel: brighter by 2.5 thresholds, the same, darker by 0.9 threshold, darker by 1.2
    logs = np.log(eps + 0.3) + th * np.array([0.0, 2.5, 2.5, 1.6, 0.4])
    frames = (np.exp(logs) - eps).reshape(-1, 1, 1)
    ev = events.events_from_frames(frames, th, eps)
    assert ev.shape == (4, 1, 1, 2) and ev.dtype == np.uint8
    # ON at step 0 (reference moves by 2 thresholds, to 2.0); nothing at 2.5; 1.6 is only 0.4
    # below the reference: nothing; 0.4 is 1.6 below: one OFF event
    np.testing.assert_array_equal(ev[:, 0, 0], [[1, 0], [0, 0], [0, 0], [0, 1]])


def test_events_from_frames_noise_needs_rng():
    with pytest.raises(ValueError, match="rng"):
        events.events_from_frames(np.zeros((2, 1, 1)), 0.2, 0.05, noise_rate=0.1)


@pytest.fixture(scope="module")
def few_digits():
    return data.digits(0)["x_train"][:12]


def test_event_digits_shape_polarities_and_determinism(few_digits):
    x = events.event_digits(few_digits, seed=3)
    assert x.shape == (12, 18, 16 * 16 * 2) and x.dtype == np.uint8
    assert set(np.unique(x)) == {0, 1}
    maps = x.reshape(12, 18, 16, 16, 2)
    on, off = maps[..., 0].sum(), maps[..., 1].sum()
    assert on > 0 and off > 0 and 0.7 < on / off < 1.4          # a moving edge makes both
    np.testing.assert_array_equal(x, events.event_digits(few_digits, seed=3))
    assert (x != events.event_digits(few_digits, seed=4)).any()


def test_event_digits_only_the_digit_makes_events(few_digits):
    quiet = dict(noise_rate=0.0)
    blank = events.event_digits(np.zeros((2, 64)), seed=0, **quiet)
    assert blank.sum() == 0
    dot = np.zeros((1, 64))
    dot[0, [27, 28, 35, 36]] = 1.0                                # the 2x2 centre of the 8x8 image
    d = events.event_digits(dot, seed=0, **quiet).reshape(18, 16, 16, 2)
    # upsampled, the dot covers about rows/cols 5..10; the sensor moves it by at most 2 pixels
    outside = np.ones((16, 16), bool)
    outside[3:13, 3:13] = False
    assert d[:, outside].sum() == 0 and d.sum() > 0
    x = events.event_digits(few_digits, seed=0, **quiet).reshape(12, 18, 16, 16, 2)
    # each saccade moves the image, so every saccade has events
    assert all(x[:, 6 * i:6 * i + 6].sum() > 0 for i in range(3))


def test_event_digits_classes_differ_in_event_maps():
    dg = data.digits(0)
    x = events.event_digits(dg["x_train"][:300], seed=0).reshape(300, -1).astype(np.float64)
    y = dg["y_train"][:300]
    means = np.stack([x[y == k].mean(0) for k in range(10)])
    # nearest class mean on summed events beats chance by far: the digit survives the sensor
    pred = np.argmin(((x[:, None] - means[None]) ** 2).sum(-1), 1)
    assert (pred == y).mean() > 0.6


@pytest.mark.parametrize("kw,msg", [
    (dict(digit_size=14), "digit_size = 14"), (dict(threshold=0.0), "threshold > 0"),
    (dict(noise_rate=1.5), "noise_rate"), (dict(steps_per_saccade=0), "steps_per_saccade")])
def test_event_digits_bad_arguments(few_digits, kw, msg):
    with pytest.raises(ValueError, match=msg):
        events.event_digits(few_digits, seed=0, **kw)


def test_event_digits_bad_pixels():
    with pytest.raises(ValueError, match=r"\[N, 64\]"):
        events.event_digits(np.zeros((2, 63)), seed=0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        events.event_digits(np.full((2, 64), 16.0), seed=0)


def test_event_digits_splits_keep_the_digits_test_set():
    sp = events.event_digits_splits(steps_per_saccade=2)
    dg = data.digits(0)
    np.testing.assert_array_equal(sp["test"][1], dg["y_test"])
    assert len(sp["train"][1]) + len(sp["validation"][1]) == len(dg["y_train"])
    assert abs(len(sp["validation"][1]) - 0.15 * len(dg["y_train"])) <= 1
    assert sp["train"][0].shape[1:] == (6, 512)


def test_interval_task_only_the_interval_carries_the_class():
    iv = (2, 5, 8, 11)
    x, y = events.interval_task(400, seed=1, intervals=iv, pairs=3, steps=24)
    assert x.shape == (400, 24, 6) and x.dtype == np.uint8 and y.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(y), [100] * 4)
    np.testing.assert_array_equal(x.sum(1), 1)                   # one spike per channel
    t = x.argmax(1)                                               # [n, channels] spike times
    np.testing.assert_array_equal(t[:, 1::2] - t[:, 0::2], np.asarray(iv)[y][:, None].repeat(3, 1))
    # onsets do not depend on the class
    onsets = [t[y == k][:, 0::2].ravel() for k in range(4)]
    assert max(o.max() for o in onsets) == min(o.max() for o in onsets)
    assert max(abs(o.mean() - onsets[0].mean()) for o in onsets) < 1.5
    x2, y2 = events.interval_task(400, seed=1, intervals=iv, pairs=3, steps=24)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)


def test_interval_task_noise_and_errors():
    x, _ = events.interval_task(200, seed=0, noise_rate=0.05)
    assert (x.sum(1) > 1).any()
    with pytest.raises(ValueError, match="max interval 11"):
        events.interval_task(10, seed=0, steps=12)
    with pytest.raises(ValueError, match="distinct"):
        events.interval_task(10, seed=0, intervals=(3, 3))


def test_interval_splits_sizes():
    sp = events.interval_splits(steps=16)
    assert {k: len(v[1]) for k, v in sp.items()} == {"train": 2000, "validation": 500, "test": 1000}
    assert not np.array_equal(sp["train"][0][:500], sp["validation"][0])


def test_event_digits_copies_add_new_recordings_of_the_training_digits_only():
    one = events.event_digits_splits(steps_per_saccade=1)
    two = events.event_digits_splits(steps_per_saccade=1, copies=2)
    n = len(one["train"][1])
    np.testing.assert_array_equal(two["train"][0][:n], one["train"][0])
    np.testing.assert_array_equal(two["train"][1], np.tile(one["train"][1], 2))
    assert not np.array_equal(two["train"][0][n:], one["train"][0])       # other sensor draws
    for k in ("validation", "test"):
        for a, b in zip(one[k], two[k]):
            np.testing.assert_array_equal(a, b)


def test_pipeline_data_holds_out_the_generators_validation_split():
    from neurohw import tasks
    from neurohw.config import parse_config
    cfg = parse_config({"name": "iv", "data": {"task": "intervals", "steps": 16, "n_val": 500},
                        "model": {"layers": [{"n": 4}], "readout": {"n": 4}}})
    d, sp = tasks.build_data(cfg), events.interval_splits(steps=16)
    for got, want in ((d.x_train, sp["train"][0]), (d.y_train, sp["train"][1]), (d.x_val, sp["validation"][0]),
                      (d.y_val, sp["validation"][1]), (d.x_test, sp["test"][0])):
        np.testing.assert_array_equal(got, want)
