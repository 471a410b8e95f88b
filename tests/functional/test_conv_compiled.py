"""The compiled passes of the GEMM convolution (conv_compiled.py): im2col and col2im against
plain loops and the NumPy reference, the threaded sample ranges against PyTorch."""

import threading
import time

import numpy as np
import pytest
import torch
from gradcheck import assert_rel_close
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit

import kernelab as kl
import kernelab.functional as F
from kernelab.core import team
from kernelab.functional import conv_algorithms, conv_compiled
from kernelab.functional.conv import pad, unpad
from kernelab.functional.geometry import conv_geometry

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TOL = {np.float64: 1e-9, np.float32: 2e-4}


@st.composite
def column_cases(draw):
    """A geometry, a channel-major padded input (C-contiguous or a transposed view) and a
    range of its samples."""
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in range(2))
    geometry = conv_geometry(kernel, stride, padding, dilation, 1)
    window = geometry.window
    n, c = draw(st.integers(1, 4)), draw(st.integers(1, 3))
    height = max(1, window[0] - sum(padding[0])) + draw(st.integers(0, 4))
    width = max(1, window[1] - sum(padding[1])) + draw(st.integers(0, 4))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    x = np.random.default_rng(draw(st.integers(0, 99))).standard_normal((n, c, height, width))
    xp = pad(x.astype(dtype).transpose(1, 0, 2, 3), padding)  # (C, N, Hp, Wp)
    if draw(st.booleans()):
        xp = np.ascontiguousarray(xp)
    start = draw(st.integers(0, n - 1))
    return geometry, xp, start, draw(st.integers(start + 1, n))


def loop_columns(xp, geometry, start, stop):
    """cols[c, p, q, s, i, j] = xp[c, start + s, i·sh + p·dh, j·sw + q·dw], pixel by pixel."""
    (kh, kw), (sh, sw), (dh, dw) = geometry.kernel_size, geometry.stride, geometry.dilation
    oh, ow = geometry.output_size(*xp.shape[2:], padded=True)
    cols = np.zeros((xp.shape[0], kh, kw, stop - start, oh, ow), xp.dtype)
    for c, p, q, s, i, j in np.ndindex(cols.shape):
        cols[c, p, q, s, i, j] = xp[c, start + s, i * sh + p * dh, j * sw + q * dw]
    return cols


@settings(max_examples=30)
@given(column_cases())
def test_im2col_matches_loops_and_numpy(case):
    geometry, xp, start, stop = case
    expected = loop_columns(xp, geometry, start, stop)
    c, kh, kw, chunk, oh, ow = expected.shape
    cols = np.full((c * kh * kw, chunk * oh * ow), np.nan, xp.dtype)
    conv_compiled.fill_columns(xp, start, geometry, cols)
    assert np.array_equal(cols.reshape(expected.shape), expected)
    reference = conv_algorithms.im2col(xp[:, start:stop], geometry)
    assert np.array_equal(cols, reference)


@settings(max_examples=30)
@given(column_cases(), st.booleans())
def test_col2im_matches_loops_and_numpy(case, batch_first):
    """The compiled col2im writes the unpadded gradient, channel-major or batch-first."""
    geometry, xp, start, stop = case
    (kh, kw), (sh, sw), (dh, dw) = geometry.kernel_size, geometry.stride, geometry.dilation
    oh, ow = geometry.output_size(*xp.shape[2:], padded=True)
    shape = (xp.shape[0], kh, kw, stop - start, oh, ow)
    cols = np.random.default_rng(5).standard_normal(shape).astype(xp.dtype)
    expected = np.zeros((xp.shape[0], stop - start) + xp.shape[2:])
    for c, p, q, s, i, j in np.ndindex(cols.shape):
        expected[c, s, i * sh + p * dh, j * sw + q * dw] += cols[c, p, q, s, i, j]
    c, n = xp.shape[:2]
    size = unpad(xp, geometry.padding).shape[2:]
    gx = np.full(((n, c) if batch_first else (c, n)) + size, np.nan, xp.dtype)
    conv_compiled.add_columns(cols, start, geometry, gx, batch_first)  # stale values overwritten
    gx = gx.transpose(1, 0, 2, 3) if batch_first else gx  # (C, N, H, W)
    tol = TOL[xp.dtype.type]
    assert_rel_close(gx[:, start:stop], unpad(expected, geometry.padding), tol, "col2im vs loops")
    reference = unpad(conv_algorithms.col2im(cols, expected.shape, geometry), geometry.padding)
    assert_rel_close(gx[:, start:stop], reference, tol, "col2im vs NumPy")
    assert np.isnan(gx[:, :start]).all() and np.isnan(gx[:, stop:]).all()


def test_channel_sums():
    y = np.random.default_rng(6).standard_normal((5, 3, 7))
    sums = np.empty(5)
    conv_compiled.channel_sums(y, sums)
    assert_rel_close(sums, y.sum(axis=(1, 2)), 1e-12, "channel sums")


@settings(max_examples=30, deadline=None)
@given(
    shape=st.tuples(*[st.integers(1, 4)] * 2, st.integers(1, 6), st.integers(1, 6)),
    padding=st.tuples(*[st.tuples(st.integers(0, 3), st.integers(0, 3))] * 2),
    dtype=st.sampled_from([np.float32, np.float64]),
    value=st.sampled_from([0.0, -np.inf, 1.5]),
    batch_first=st.booleans(),
    data=st.data(),
)
def test_pad_planes_matches_numpy_pad(shape, padding, dtype, value, batch_first, data):
    """Each sample of the range framed as np.pad frames it; the others left untouched. A
    batch-first source is read plane by plane as its channel-major view."""
    x = np.random.default_rng(shape[0]).standard_normal(shape).astype(dtype)
    source = np.ascontiguousarray(x.transpose(1, 0, 2, 3)) if batch_first else x
    start = data.draw(st.integers(0, shape[1] - 1))
    stop = data.draw(st.integers(start + 1, shape[1]))
    expected = np.pad(x, ((0, 0), (0, 0), *padding), constant_values=value)
    xp = np.full(expected.shape, np.nan, dtype)
    top, left = padding[0][0], padding[1][0]
    conv_compiled.pad_planes(source, top, left, dtype(value), xp, start, stop, batch_first)
    np.testing.assert_array_equal(xp[:, start:stop], expected[:, start:stop])
    assert np.isnan(xp[:, :start]).all() and np.isnan(xp[:, stop:]).all()


@pytest.mark.parametrize("layout", ["C", "transposed"])
def test_pad_of_a_large_input_on_threads_matches_numpy_pad(
    threads, kernel_path, layout, monkeypatch
):
    """Past ``SPLIT_BYTES`` the copy is split between the threads; a transposed view (not
    C-contiguous) is copied plane by plane too on the compiled path."""
    x = np.random.default_rng(2).standard_normal((6, 80, 30, 30)).astype(np.float32)  # 1.7 MB
    monkeypatch.setattr(conv_algorithms, "SPLIT_BYTES", x.nbytes // 2)
    x = x if layout == "C" else x.transpose(1, 0, 2, 3)
    padding = ((1, 2), (2, 1))
    expected = np.pad(x, ((0, 0), (0, 0), *padding), constant_values=-np.inf)
    xp = pad(x, padding, value=-np.inf)
    assert xp.flags.c_contiguous
    np.testing.assert_array_equal(xp, expected)


def test_copies_of_a_network_s_sizes_stay_on_the_calling_thread(threads, monkeypatch):
    """A transposing copy of 8 MB (ResNet-8's widest activations) is not handed to the pool,
    which made such copies slower at every size measured (``SPLIT_BYTES``)."""

    def no_pool(task, ranges):
        raise AssertionError("the copy was split between threads")

    monkeypatch.setattr(conv_compiled, "run", no_pool)
    x = np.random.default_rng(3).standard_normal((64, 32, 32, 32)).astype(np.float32)
    view = x.transpose(1, 0, 2, 3)  # (C, N, H, W) view of batch-first memory
    copy = conv_algorithms.contiguous(view)
    assert copy.flags.c_contiguous
    np.testing.assert_array_equal(copy, view)


def test_run_covers_every_range_in_order(threads):
    ranges = [(0, 3), (3, 5), (5, 6), (6, 9), (9, 10)]
    seen = []
    caller, caller_took_one = threading.get_ident(), threading.Event()

    def task(start, stop):
        seen.append(threading.get_ident())
        if seen[-1] == caller:
            caller_took_one.set()
        else:  # the pool's threads leave ranges for the caller however fast they start
            caller_took_one.wait(timeout=5)
        # a task runs its passes on one thread: a nested run does not use the pool
        assert conv_compiled.run(lambda a, b: b - a, [(0, 1), (1, 3)]) == [1, 2]
        return start, stop

    assert conv_compiled.run(task, ranges) == ranges
    assert threading.get_ident() in seen  # the caller takes ranges too
    assert len(set(seen)) <= threads


def test_run_raises_a_task_error_once_no_range_runs(threads):
    started, ended = [], []

    def task(start, stop):
        if start == 0:
            raise ValueError("range 0")
        started.append(start)
        time.sleep(0.01)
        ended.append(start)

    with pytest.raises(ValueError, match="range 0"):
        conv_compiled.run(task, [(0, 1), (1, 2), (2, 3), (3, 4)])
    assert sorted(ended) == sorted(started)


@njit(cache=True, nogil=True)
def count_tasks(counts, control):
    """A team kernel: ``counts[task] += 1`` for every task it claims; how many it did."""
    done = 0
    first, last = team.claim(control, counts.size)
    while first < last:
        for task in range(first, last):
            counts[task] += 1
        done += last - first
        first, last = team.claim(control, counts.size)
    return done


@pytest.mark.parametrize("count", [0, 1, 13, 1000])
def test_share_runs_every_task_once(threads, count):
    for _ in range(3):  # the helpers spinning from the pass before, then asleep
        counts = np.zeros(count, np.int64)
        conv_compiled.share(count_tasks, (counts,), count)
        np.testing.assert_array_equal(counts, 1)
        time.sleep(0.002)
    counts = np.zeros(count, np.int64)  # inside a range of run: on that range's thread
    conv_compiled.run(lambda a, b: conv_compiled.share(count_tasks, (counts,), count), [(0, 1)])
    np.testing.assert_array_equal(counts, 1)


# x shape, w shape, stride, padding, dilation, groups: the GEMM path with im2col, its 1x1
# direct form, groups, non-square kernels, asymmetric padding, batch 1, one input channel,
# and the depthwise path
PATHS = [
    ((5, 3, 9, 8), (4, 3, 3, 2), (1, 1), ((1, 2), (0, 1)), (1, 1), 1),
    ((4, 2, 9, 9), (4, 2, 2, 3), (2, 3), ((2, 0), (1, 1)), (2, 1), 1),
    ((6, 4, 7, 6), (6, 2, 3, 3), (1, 2), ((1, 1), (1, 1)), (1, 2), 2),
    ((5, 4, 6, 7), (3, 4, 1, 1), (1, 1), ((0, 0), (0, 0)), (1, 1), 1),
    ((1, 3, 8, 8), (4, 3, 3, 3), (2, 2), ((1, 1), (1, 1)), (1, 1), 1),
    ((3, 1, 10, 10), (8, 1, 5, 5), (1, 1), ((2, 2), (2, 2)), (1, 1), 1),
    ((2, 3, 7, 8), (6, 1, 3, 2), (2, 1), ((1, 0), (2, 1)), (1, 2), 3),
]


def both_backward(rng, arrays, stride, padding, dilation, groups):
    """(ours, theirs, y, ty): kernelab's conv2d and PyTorch's (the asymmetric padding by
    ``pad``) of the arrays (x, w, b), each differentiated by one random output gradient."""
    ours = [kl.Tensor(a, requires_grad=True) for a in arrays]
    y = F.conv2d(*ours, stride, padding, dilation, groups)
    theirs = [torch.tensor(np.ascontiguousarray(a), requires_grad=True) for a in arrays]
    (top, bottom), (left, right) = padding
    xt = torch.nn.functional.pad(theirs[0], (left, right, top, bottom))
    ty = torch.nn.functional.conv2d(xt, theirs[1], theirs[2], stride, 0, dilation, groups)
    gy = rng.uniform(0.5, 2.0, ty.shape).astype(arrays[0].dtype)
    y.backward(gy)
    ty.backward(torch.from_numpy(gy))
    return ours, theirs, y, ty


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("chunk_bytes", [1, conv_algorithms.CHUNK_BYTES])
@pytest.mark.parametrize("x_shape, w_shape, stride, padding, dilation, groups", PATHS)
def test_sample_ranges_on_threads_match_pytorch(
    monkeypatch, threads, chunk_bytes, dtype, x_shape, w_shape, stride, padding, dilation, groups
):
    # one sample per range (chunk_bytes 1) or a few ranges per thread; forward and all three
    # gradients must be PyTorch's on either kernel path
    monkeypatch.setattr(conv_algorithms, "CHUNK_BYTES", chunk_bytes)
    rng = np.random.default_rng(8)
    x, w, b = (rng.standard_normal(s).astype(dtype) for s in (x_shape, w_shape, w_shape[0]))
    ours, theirs, y, ty = both_backward(rng, (x.copy(), w, b), stride, padding, dilation, groups)
    assert_rel_close(y.array, ty.detach().numpy(), TOL[dtype], "output")
    for name, a, t in zip(("input", "weight", "bias"), ours, theirs, strict=True):
        assert a.grad.dtype == dtype
        assert_rel_close(a.grad, t.grad.numpy(), TOL[dtype], f"grad {name}")


@pytest.mark.parametrize("kernel, stride", [(1, 1), (3, 2)])
def test_inference_shares_its_sample_ranges_and_matches_pytorch(
    threads, kernel_path, monkeypatch, kernel, stride
):
    """A GEMM forward that no gradient follows runs its ranges on the pool too, each with one
    BLAS thread: on BLAS's own threads it left them spinning beside the compiled kernels
    (``functional/products.py``)."""
    seen = []
    run = conv_compiled.run

    def recorded(task, ranges):
        seen.append(len(ranges))
        return run(task, ranges)

    monkeypatch.setattr(conv_compiled, "run", recorded)
    rng = np.random.default_rng(9)
    x = rng.standard_normal((6, 5, 11, 11)).astype(np.float32)
    w = rng.standard_normal((7, 5, kernel, kernel)).astype(np.float32)
    geometry = conv_geometry((kernel, kernel), (stride, stride), ((0, 0), (0, 0)), (1, 1), 1)

    class Context:
        needs_input_grad = (False, False, False)

    xp = np.ascontiguousarray(x.transpose(1, 0, 2, 3))  # (C_in, N, H, W)
    y = conv_algorithms.Gemm.forward(Context(), xp, w, None, geometry)  # (C_out, N, OH, OW)
    expected = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w), stride=stride)
    assert_rel_close(y.transpose(1, 0, 2, 3), expected.numpy(), TOL[np.float32], "output")
    if kernel_path == "numba":
        assert seen and sum(seen) >= threads
    else:  # the NumPy reference keeps BLAS's threads
        assert seen == []


def test_wait_for_reads_the_flags_each_time(kernel_path):
    if kernel_path != "numba":
        pytest.skip("the compiled path's threads")
    done = np.array([1, 0], np.int8)
    assert not conv_compiled.wait_for(done, 100)
    done[1] = 1
    assert conv_compiled.wait_for(done, 100)


# x shape, w shape, stride, padding, dilation, groups: strided, dilated, asymmetric, odd sizes
# (5 input channels or groups: thinner layers run conv_thin_compiled)
LAYOUT_CASES = [
    ((3, 5, 9, 7), (5, 5, 3, 3), (2, 2), ((1, 1), (1, 1)), (1, 1), 1),
    ((2, 6, 10, 11), (4, 6, 3, 2), (3, 2), ((2, 0), (1, 2)), (1, 1), 1),
    ((2, 4, 9, 9), (6, 2, 3, 3), (1, 1), ((2, 2), (2, 2)), (2, 2), 2),
    ((3, 5, 11, 10), (3, 5, 3, 3), (2, 3), ((3, 1), (0, 3)), (3, 2), 1),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["batch-first", "channel-major"])
@pytest.mark.parametrize("x_shape, w_shape, stride, padding, dilation, groups", LAYOUT_CASES)
def test_the_input_gradient_comes_unpadded_in_the_input_layout(
    kernel_path, layout, dtype, x_shape, w_shape, stride, padding, dilation, groups
):
    """The compiled col2im writes the input gradient without the padding, batch-first for a
    batch-first input (no copy as a leaf's ``.grad``); either way PyTorch's numbers."""
    rng = np.random.default_rng(3)
    x, w, b = (rng.standard_normal(s).astype(dtype) for s in (x_shape, w_shape, w_shape[0]))
    if layout == "channel-major":  # (N, C, H, W) view of (C, N, H, W) memory, as between layers
        x = np.ascontiguousarray(x.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
    ours, theirs, _, _ = both_backward(rng, (x, w, b), stride, padding, dilation, groups)
    for name, a, t in zip(("input", "weight", "bias"), ours, theirs, strict=True):
        assert_rel_close(a.grad, t.grad.numpy(), TOL[dtype], f"grad {name}")
    if layout == "batch-first" and kernel_path == "numba":
        assert ours[0].grad.array.flags.c_contiguous
