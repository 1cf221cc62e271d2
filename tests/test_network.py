"""IntNetwork validation and bundles: every bad input gives a clear error."""
import numpy as np
import pytest
import yaml

from neurohw import BundleError, IntLayer, IntNetwork, Noise, emu, load_bundle, synth
from neurohw.network import ARRAYS, MANIFEST


def layer(**kw):
    base = dict(weights=np.array([[2, -4], [0, 6]]), du=10, dv=20, vth=30)
    base.update(kw)
    return IntLayer(**base)


def net(**kw):
    return IntNetwork(n_in=2, layers=[layer(**kw)])


@pytest.mark.parametrize("kw, message", [
    (dict(du=4096), "layer 0: du = 4096 is out of range; allowed [0, 4095]"),
    (dict(du=-1), "layer 0: du = -1 is out of range; allowed [0, 4095]"),
    (dict(dv=4097), "layer 0: dv = 4097 is out of range; allowed [0, 4096]"),
    (dict(vth=131072), "layer 0: vth = 131072 is out of range; allowed [0, 131071]"),
    (dict(vth=1.5), "layer 0: vth must be an integer, got 1.5"),
    (dict(weight_exp=8), "layer 0: weight_exp = 8 is out of range; allowed [-8, 7]"),
    (dict(num_weight_bits=0), "layer 0: num_weight_bits = 0 is out of range; allowed [1, 8]"),
    (dict(bias_mant=np.array([0, 4096])), "layer 0: bias_mant = 4096 at index (1,) is out of range; allowed [-4096, 4095]"),
    (dict(bias_exp=np.array([8, 0])), "layer 0: bias_exp = 8 at index (0,) is out of range; allowed [-7, 7]"),
    (dict(bias_mant=np.array([1, 2, 3])), "layer 0: bias_mant has shape (3,), expected (2,)"),
    (dict(bias_mant=np.array([0.5, 1.0])), "layer 0: bias_mant must have an integer dtype, got float64"),
    (dict(weights=np.array([[2.0, 4.0], [0.0, 6.0]])), "layer 0: weights must have an integer dtype, got float64"),
    (dict(weights=np.array([[3, -4], [0, 6]])), "layer 0: weights[0, 0] = 3 is not representable: Lava's mixed "
                                                "8-bit Dense would make it 2; allowed multiples of 2 in [-256, 254]"),
    (dict(weights=np.array([[255, 0], [0, 6]])), None),   # excitatory: 255 is fine
    (dict(weights=np.array([[-256, 0], [0, -6]])), "weights[0, 0] = -256 is not representable: Lava's inhibitory"),
    (dict(weights=np.array([[300, 0], [0, 6]])), "layer 0: weights = 300 at index (0, 0) is out of range; allowed [-256, 255]"),
    (dict(weights=np.array([[4, 0], [0, 6]]), num_weight_bits=6), "weights[1, 1] = 6 is not representable: Lava's excitatory 6-bit Dense would make it 4; allowed multiples of 4 in [0, 252]"),
    (dict(weights=np.array([[2, 4, 6]])), "layer 0: weights has shape (1, 3), expected (1, 2)"),
    (dict(rec_weights=np.array([[2]])), "layer 0: rec_weights has shape (1, 1), expected (2, 2)"),
    (dict(noise=Noise(inject="membrane")), "layer 0: noise inject = 'membrane' is not allowed"),
    (dict(noise=Noise(inject="voltage", exp=24)), "layer 0: noise_exp = 24 is out of range; allowed [0, 23]"),
    (dict(noise=Noise(inject="voltage", mant=16)), "layer 0: noise_mant = 16 is out of range; allowed [-16, 15]"),
    (dict(noise=Noise(inject="voltage", seed=-1)), "layer 0: noise_seed = -1 is out of range"),
])
def test_validation_messages(kw, message):
    if message is None:
        net(**kw)
        return
    with pytest.raises(ValueError) as e:
        net(**kw)
    assert message in str(e.value)


def test_network_level_errors():
    with pytest.raises(ValueError, match="n_in = 0 must be a positive integer"):
        IntNetwork(n_in=0, layers=[layer()])
    with pytest.raises(ValueError, match="layers is empty"):
        IntNetwork(n_in=2, layers=[])
    with pytest.raises(ValueError, match="layer 1: weights has shape \\(2, 3\\), expected \\(2, 2\\)"):
        IntNetwork(n_in=2, layers=[layer(), layer(weights=np.zeros((2, 3), int))])
    with pytest.raises(ValueError, match="input_message_bits = 25 is out of range; allowed \\[0, 24\\]"):
        IntNetwork(n_in=2, layers=[layer()], input_message_bits=25)


def test_raster_errors():
    n = net()
    with pytest.raises(ValueError, match=r"raster: shape \(1, 5, 3\) must be \[batch, steps, n_in=2\]"):
        emu.run(n, np.zeros((1, 5, 3), np.uint8))
    with pytest.raises(ValueError, match="raster: dtype float64"):
        emu.run(n, np.zeros((1, 5, 2)))
    with pytest.raises(ValueError, match=r"raster: value \(binary spikes\) = 2 at index \(0, 1, 0\) is out of range; allowed \[0, 1\]"):
        r = np.zeros((1, 5, 2), np.uint8)
        r[0, 1, 0] = 2
        emu.run(n, r)


def random_nets(k=10, seed=0):
    rng = np.random.default_rng(seed)
    return [synth.random_network(rng, p_noise=0.5) for _ in range(k)]


def test_bundle_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    for i, n in enumerate(random_nets()):
        extra = {"expected_spikes": rng.integers(0, 2, (2, 3, 4)).astype(np.uint8)}
        n.save(tmp_path / f"b{i}", extra=extra)
        m, ex = load_bundle(tmp_path / f"b{i}", with_extra=True)
        assert np.array_equal(ex["expected_spikes"], extra["expected_spikes"])
        assert m.n_in == n.n_in and m.input_message_bits == n.input_message_bits
        for a, b in zip(n.layers, m.layers):
            for f in ("weights", "bias_mant", "bias_exp"):
                assert np.array_equal(getattr(a, f), getattr(b, f))
            assert (a.rec_weights is None) == (b.rec_weights is None)
            if a.recurrent:
                assert np.array_equal(a.rec_weights, b.rec_weights)
            for f in ("du", "dv", "vth", "weight_exp", "num_weight_bits", "rec_weight_exp", "rec_num_weight_bits", "noise"):
                assert getattr(a, f) == getattr(b, f), f
        x = synth.random_raster(rng, n, 2, 12)
        assert not __import__("neurohw.parity").parity.compare(emu.run(n, x), emu.run(m, x))
    manifest = yaml.safe_load((tmp_path / "b0" / MANIFEST).read_text())
    assert manifest["format_version"] == 3 and "sha256" in manifest["arrays"]["layer0.weights"]


def test_overwrite_is_atomic_and_leaves_nothing_behind(tmp_path, monkeypatch):
    a, b = random_nets(2, seed=3)
    a.save(tmp_path / "net")
    b.save(tmp_path / "net")          # replaces
    assert load_bundle(tmp_path / "net").n_in == b.n_in
    import neurohw.network as nw

    def boom(*args, **kwargs):
        raise OSError("disk full")
    monkeypatch.setattr(nw.np, "savez_compressed", boom)
    with pytest.raises(OSError, match="disk full"):
        a.save(tmp_path / "net")
    with pytest.raises(OSError):
        a.save(tmp_path / "fresh")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net"]
    assert load_bundle(tmp_path / "net").n_in == b.n_in   # the old bundle is intact


@pytest.fixture
def bundle(tmp_path):
    random_nets(1, seed=4)[0].save(tmp_path / "b")
    return tmp_path / "b"


def _edit_manifest(bundle, fn):
    m = yaml.safe_load((bundle / MANIFEST).read_text())
    fn(m)
    (bundle / MANIFEST).write_text(yaml.safe_dump(m))


def test_truncated_bundle(bundle):
    data = (bundle / ARRAYS).read_bytes()
    (bundle / ARRAYS).write_bytes(data[: len(data) // 2])
    with pytest.raises(BundleError, match="arrays.npz is truncated or corrupt"):
        load_bundle(bundle)


def test_tampered_bundle(bundle):
    z = dict(np.load(bundle / ARRAYS))
    z["layer0.weights"] = z["layer0.weights"].copy()
    z["layer0.weights"].flat[0] ^= 2
    np.savez(bundle / ARRAYS, **z)
    with pytest.raises(BundleError, match="array 'layer0.weights' fails its sha256 check"):
        load_bundle(bundle)


def test_wrong_version_and_format(bundle):
    _edit_manifest(bundle, lambda m: m.update(format_version=99))
    with pytest.raises(BundleError, match="format_version = 99 is not supported; allowed 1..3"):
        load_bundle(bundle)
    _edit_manifest(bundle, lambda m: m.update(format="something-else", format_version=2))
    with pytest.raises(BundleError, match="has format 'something-else'"):
        load_bundle(bundle)


def test_shape_mismatch(bundle):
    _edit_manifest(bundle, lambda m: m["arrays"]["layer0.weights"].update(shape=[1, 1]))
    with pytest.raises(BundleError, match="array 'layer0.weights' has shape .* manifest says shape \\[1, 1\\]"):
        load_bundle(bundle)


def test_n_out_mismatch(bundle):
    _edit_manifest(bundle, lambda m: m["layers"][0].update(n_out=999))
    with pytest.raises(BundleError, match="layer 0 n_out = 999 in the manifest"):
        load_bundle(bundle)


def test_missing_files(bundle):
    (bundle / ARRAYS).unlink()
    with pytest.raises(BundleError, match="arrays.npz is missing"):
        load_bundle(bundle)
    with pytest.raises(BundleError, match="no manifest.yaml"):
        load_bundle(bundle.parent / "nothing")


def test_invalid_parameter_in_bundle(bundle):
    _edit_manifest(bundle, lambda m: m["layers"][0].update(du=5000))
    with pytest.raises(BundleError, match="layer 0: du = 5000 is out of range; allowed \\[0, 4095\\]"):
        load_bundle(bundle)


def test_version_1_bundle_loads_without_noise(bundle):
    def to_v1(m):
        m["format_version"] = 1
        for lm in m["layers"]:
            lm.pop("noise")
    _edit_manifest(bundle, to_v1)
    n = load_bundle(bundle)
    assert all(not layer.noise.on for layer in n.layers)
