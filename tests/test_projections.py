"""Conv, sum-pool and DelayDense projections in IntNetwork: validation messages and bundle v3."""
import numpy as np
import pytest
import yaml

from neurohw import BundleError, Conv2d, IntLayer, IntNetwork, load_bundle, sum_pool
from neurohw.network import MANIFEST

LIF = dict(du=10, dv=20, vth=30)


def conv_layer(in_shape=(6, 5, 4), w_shape=(6, 3, 3, 4), value=2, **conv):
    kw = {k: conv.pop(k) for k in list(conv) if k in IntLayer.__dataclass_fields__}
    return IntLayer(weights=np.full(w_shape, value, np.int16), conv=Conv2d(in_shape=in_shape, **conv), **LIF, **kw)


def test_conv_shapes_and_index_order():
    layer = conv_layer(in_shape=(7, 6, 4), w_shape=(6, 3, 2, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2),
                       groups=2)
    net = IntNetwork(n_in=7 * 6 * 4, layers=[layer, IntLayer(weights=np.zeros((3, layer.n_out), np.int16), **LIF)])
    # H' = (7 + 2 - 2 - 1) // 2 + 1 = 4; W' = (6 + 0 - 2 - 1) // 1 + 1 = 4
    assert layer.shape == (4, 4, 6) and layer.n_out == 96 and net.sizes == [168, 96, 3]
    assert net.kinds == ["conv", "dense"] and net.max_delay == 0


@pytest.mark.parametrize("make, message", [
    (lambda: conv_layer(stride=0), "layer 0: conv stride = 0 is out of range; allowed [1, 127]"),
    (lambda: conv_layer(stride=128), "layer 0: conv stride = 128 is out of range; allowed [1, 127]"),
    (lambda: conv_layer(padding=-1), "layer 0: conv padding = -1 is out of range; allowed [0, 127]"),
    (lambda: conv_layer(dilation=(1, 0)), "layer 0: conv dilation = 0 is out of range; allowed [1, 127]"),
    (lambda: conv_layer(stride=(1, 2, 3)), "layer 0: conv stride = (1, 2, 3) must be an int or a pair of ints"),
    (lambda: conv_layer(stride=1.5), "layer 0: conv stride = 1.5 must be an int or a pair of ints"),
    (lambda: conv_layer(groups=3), "layer 0: conv groups = 3 does not divide the 4 input channels"),
    (lambda: conv_layer(w_shape=(5, 3, 3, 2), groups=2), "conv groups = 2 does not divide the 5 output channels"),
    (lambda: conv_layer(w_shape=(6, 3, 3, 4), groups=2), "conv weights have 4 input channels per group, expected "
                                                        "C_in / groups = 2"),
    (lambda: conv_layer(w_shape=(6, 7, 3, 4)), "layer 0: conv output height = 0 < 1 (input 6, kernel 7, stride 1, "
                                                "padding 0, dilation 1)"),
    (lambda: conv_layer(w_shape=(6, 3, 3, 4), dilation=3), "conv output height = 0 < 1"),
    (lambda: conv_layer(w_shape=(6, 3, 4)), "conv weights must be 4-D (C_out, kh, kw, C_in/groups), got shape (6, 3, 4)"),
    (lambda: conv_layer(in_shape=(6, 5)), "layer 0: conv in_shape = (6, 5) must be 3 positive ints (H, W, C)"),
    (lambda: conv_layer(in_shape=(6, 5, 2), w_shape=(6, 3, 3, 2)), "layer 0: conv in_shape = (6, 5, 2) holds 60 "
                                                                     "values, but the layer receives 120"),
    (lambda: conv_layer(weight_exp=1), "layer 0: weight_exp = 1 on a conv layer; allowed [0, 0] (Lava's fixed-point "
                                       "Conv ignores weight_exp)"),
    (lambda: IntLayer(weights=np.array([3, -2] * 108, np.int16).reshape(6, 3, 3, 4), conv=Conv2d((6, 5, 4)), **LIF),
     "layer 0: weights[0, 0, 0, 0] = 3 is not representable: Lava's mixed 8-bit Dense would make it 2"),
    (lambda: conv_layer(value=300), "layer 0: weights = 300 at index (0, 0, 0, 0) is out of range; allowed [-256, 255]"),
    (lambda: IntLayer(weights=np.full((6, 3, 3, 4), 2.0), conv=Conv2d((6, 5, 4)), **LIF),
     "layer 0: weights must have an integer dtype, got float64"),
    (lambda: conv_layer(delays=1), "layer 0: delays apply to Dense projections only (Lava has no delayed Conv)"),
    (lambda: IntLayer(
        weights=np.arange(1, 17, dtype=np.int16).reshape(4, 2, 2, 1), conv=Conv2d((6, 5, 4), 2, groups=4, pool=True),
        **LIF), "layer 0: sum-pool weights must all be equal (w * ones), got values [1, 2, 3, 4]"),
    (lambda: IntLayer(
        weights=np.ones((4, 2, 2, 1), np.int16), conv=Conv2d((6, 5, 4), 1, groups=4, pool=True), **LIF),
     "layer 0: sum-pool needs stride = kernel (2, 2) and dilation 1, got stride (1, 1)"),
    (lambda: IntLayer(weights=np.ones((4, 2, 2, 2), np.int16), conv=Conv2d((6, 5, 4), 2, groups=2, pool=True), **LIF),
     "layer 0: sum-pool needs groups = C_in = C_out, got groups 2, C_in 4, C_out 4"),
])
def test_conv_validation_messages(make, message):
    with pytest.raises(ValueError) as e:
        IntNetwork(n_in=120, layers=[make()])
    assert message in str(e.value)


def test_conv_int32_bound_and_chained_shapes():
    big = IntLayer(weights=np.full((1, 7, 7, 4), 255, np.int16), conv=Conv2d((8, 8, 4)), **LIF)
    IntNetwork(n_in=256, layers=[big], input_message_bits=15)            # 255 * 32767 * 196 < 2**31
    with pytest.raises(ValueError, match=r"layer 0: conv sum can reach 4278189825 \(max \|weight\| x payload "
                                         r"x fan-in 1\), beyond int32"):
        IntNetwork(n_in=256, layers=[IntLayer(weights=np.full((1, 1, 1, 1), 255, np.int16), conv=Conv2d((16, 16, 1)),
                                              **LIF)], input_message_bits=24)
    first = conv_layer(in_shape=(6, 5, 4), w_shape=(2, 3, 3, 4))          # -> (4, 3, 2)
    with pytest.raises(ValueError, match=r"layer 1: conv in_shape = \(3, 4, 2\) but the previous conv layer's "
                                         r"output is \(4, 3, 2\)"):
        IntNetwork(n_in=120, layers=[first, conv_layer(in_shape=(3, 4, 2), w_shape=(2, 1, 1, 2))])
    # a Dense in between flattens; a conv after a Dense only needs the size to match
    IntNetwork(n_in=120, layers=[first, IntLayer(weights=np.zeros((24, 24), np.int16), **LIF),
                                 conv_layer(in_shape=(3, 4, 2), w_shape=(2, 1, 1, 2))])


@pytest.mark.parametrize("kw, message", [
    (dict(delays=64), "layer 0: delays = 64 at index (0, 0) is out of range; allowed [0, 63]"),
    (dict(delays=-1), "layer 0: delays = -1 at index (0, 0) is out of range; allowed [0, 63]"),
    (dict(delays=np.ones((2, 3), int)), "layer 0: delays has shape (2, 3), expected (2, 2) (one delay per synapse)"),
    (dict(delays=np.ones((2, 2))), "layer 0: delays must have an integer dtype, got float64"),
    (dict(rec_delays=1), "layer 0: rec_delays given without rec_weights"),
    (dict(rec_weights=np.zeros((2, 2), int), rec_delays=np.array([[0, 70], [0, 0]])),
     "layer 0: rec_delays = 70 at index (0, 1) is out of range; allowed [0, 63]"),
])
def test_delay_validation_messages(kw, message):
    with pytest.raises(ValueError) as e:
        IntNetwork(n_in=2, layers=[IntLayer(weights=np.array([[2, -4], [0, 6]]), **LIF, **kw)])
    assert message in str(e.value)


def mixed_network():
    rng = np.random.default_rng(0)
    conv = IntLayer(weights=(rng.integers(-3, 3, (4, 3, 3, 1)) * 2).astype(np.int16),
                    conv=Conv2d((8, 7, 2), stride=(1, 2), padding=1, dilation=(2, 1), groups=2), **LIF)
    pool = sum_pool(conv.shape, 2, 5, **LIF)
    delay = IntLayer(weights=rng.integers(0, 9, (5, pool.n_out)).astype(np.int16), weight_exp=-2,
                     delays=rng.integers(0, 64, (5, pool.n_out)), rec_weights=-np.eye(5, dtype=np.int16) * 8,
                     rec_delays=rng.integers(0, 4, (5, 5)), **LIF)
    delay.delays[0, 0] = 63
    return IntNetwork(n_in=112, layers=[conv, pool, delay, IntLayer(weights=np.ones((2, 5), np.int16), **LIF)])


def test_bundle_v3_round_trip(tmp_path):
    net = mixed_network()
    assert net.kinds == ["conv", "pool", "delay", "dense"] and net.max_delay == 63
    net.save(tmp_path / "b")
    m = yaml.safe_load((tmp_path / "b" / MANIFEST).read_text())
    assert m["format_version"] == 3 and m["layers"][0]["conv"] == dict(
        in_shape=[8, 7, 2], stride=[1, 2], padding=[1, 1], dilation=[2, 1], groups=2, pool=False)
    back = load_bundle(tmp_path / "b")
    assert back.kinds == net.kinds and back.sizes == net.sizes
    for a, b in zip(net.layers, back.layers):
        assert a.conv == b.conv
        for f in ("weights", "delays", "rec_weights", "rec_delays", "bias_mant", "bias_exp"):
            x, y = getattr(a, f), getattr(b, f)
            assert (x is None and y is None) or (np.array_equal(x, y) and x.dtype == y.dtype), f


def test_bundle_v3_errors(tmp_path):
    mixed_network().save(tmp_path / "b")
    path = tmp_path / "b" / MANIFEST
    m = yaml.safe_load(path.read_text())
    m["layers"][0]["kind"] = "fft"
    path.write_text(yaml.safe_dump(m))
    with pytest.raises(BundleError, match="layer 0 kind = 'fft'; allowed dense, delay, conv, pool"):
        load_bundle(tmp_path / "b")
    m["layers"][0]["kind"] = "conv"
    m["layers"][0]["conv"]["stride"] = [0, 1]
    path.write_text(yaml.safe_dump(m))
    with pytest.raises(BundleError, match="layer 0: conv stride = 0 is out of range; allowed \\[1, 127\\]"):
        load_bundle(tmp_path / "b")
    del m["layers"][0]["conv"]
    path.write_text(yaml.safe_dump(m))
    with pytest.raises(BundleError, match="layer 0 is a conv layer without its conv geometry"):
        load_bundle(tmp_path / "b")


@pytest.mark.parametrize("name", ["digits", "recurrent", "spike_train", "yinyang_stochastic"])
def test_committed_v2_bundles_load(name):
    from pathlib import Path
    path = Path(__file__).parent.parent / "deploy" / name
    assert yaml.safe_load((path / MANIFEST).read_text())["format_version"] in (1, 2)
    net = load_bundle(path)
    assert set(net.kinds) == {"dense"} and net.max_delay == 0


# ---- chip references -----------------------------------------------------------------------
def test_conv_reference_is_torch_cross_correlation_wrapped_to_24_bits():
    """chip.conv_reference against torch.conv2d (a cross-correlation, N C H W), then the 24-bit wrap."""
    import torch
    from neurohw import chip
    rng = np.random.default_rng(21)
    for _ in range(40):
        g = int(rng.choice([1, 2, 3]))
        C, c_out = g * int(rng.integers(1, 3)), g * int(rng.integers(1, 3))
        kh, kw = (int(k) for k in rng.integers(1, 8, 2))
        s, p, d = ((int(a), int(b)) for a, b in (rng.integers(1, 4, 2), rng.integers(0, 4, 2), rng.integers(1, 4, 2)))
        H, W = d[0] * (kh - 1) + int(rng.integers(1, 6)), d[1] * (kw - 1) + int(rng.integers(1, 6))
        w = rng.integers(-256, 256, (c_out, kh, kw, C // g))
        graded = bool(rng.random() < 0.5)
        x = rng.integers(0, 1 << 16, (3, H * W * C)) * (rng.random((3, H * W * C)) < 0.5)
        got = chip.conv_reference(x, w, (H, W, C), s, p, d, g, graded)
        xin = x if graded else (x != 0)
        ref = torch.nn.functional.conv2d(
            torch.as_tensor(xin.reshape(3, H, W, C).transpose(0, 3, 1, 2), dtype=torch.float64),
            torch.as_tensor(w.transpose(0, 3, 1, 2), dtype=torch.float64), stride=s, padding=p, dilation=d, groups=g)
        ref = ref.numpy().round().astype(np.int64).transpose(0, 2, 3, 1).reshape(3, -1)
        assert np.array_equal(got, ((ref + 2**23) % 2**24) - 2**23)


def test_delay_buffer_timing_and_delay_zero_is_dense():
    from neurohw import chip
    rng = np.random.default_rng(22)
    w = rng.integers(-100, 100, (4, 5)) * 2
    xs = (rng.random((30, 5)) < 0.4).astype(np.int64)
    for e in (-3, 0, 2):
        dense = np.zeros((30, 4), np.int64)
        dense[1:] = chip.dense_reference(xs[:-1], w, e)
        assert np.array_equal(chip.delay_dense_reference(xs, w, np.zeros((4, 5), int), e), dense)
    # one spike at step 3, delay d: arrives at step 3 + 1 + d, nowhere else
    for d in (0, 1, 5, chip.MAX_DELAY):
        xs = np.zeros((d + 8, 1), np.int64)
        xs[3, 0] = 1
        out = chip.delay_dense_reference(xs, np.array([[6]]), np.array([[d]]))
        assert np.flatnonzero(out[:, 0]).tolist() == [4 + d] and out[4 + d, 0] == 6
    # each slot's sum is shifted on its own: 1 + 1 with weight_exp -1 gives 0, not 1
    xs = np.array([[1, 0], [0, 1], [0, 0], [0, 0]])
    out = chip.delay_dense_reference(xs, np.array([[1, 1]]), np.array([[1, 0]]), weight_exp=-1)
    assert out[:, 0].tolist() == [0, 0, 0, 0]
    assert chip.dense_reference(np.array([1, 1]), np.array([[1, 1]]), -1).tolist() == [1]
