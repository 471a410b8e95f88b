"""The JSON API against the engine: every number served equals what the model computes.

The references are computed here independently: the layers of the Sequential called one by
one, a convolution output as a plain loop over the kernel, pooling as max/mean of a window cut
out by hand, a dense layer's logit as a dot product.
"""

import base64
import hashlib
import json

import numpy as np
import pytest
from starlette.testclient import TestClient

from kernelab.apps import runs
from kernelab.apps.explain.app import create_app
from kernelab.autograd import no_grad
from kernelab.core.tensor import Tensor
from kernelab.kernels import designed as kernels
from kernelab.kernels import frequency

from .conftest import SESSION, drawn_digit, pixels_b64


@pytest.fixture(scope="module")
def client(run_dir):
    with TestClient(create_app(run_dir)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def reference(run_dir):
    """The trained model, its config, and every layer's output for the drawn digit."""
    model, config, _ = runs.load_run(run_dir)
    return model, config, layer_outputs(model, config, drawn_digit())


def model_input(pixels, config):
    return (
        (pixels.astype(np.float32) / 255 - np.float32(config["mean"])) / np.float32(config["std"])
    )[None]


def layer_outputs(model, config, pixels):
    """[input, output of layer 0, output of layer 1, ...] without the batch axis."""
    x = Tensor(model_input(pixels, config))
    outputs = [x.array[0]]
    with no_grad():
        for layer in model:
            x = layer(x)
            outputs.append(x.array[0])
    return outputs


def decoded(encoded):
    """The float values of an encoded map stack, and the quantisation step of each map."""
    q = np.frombuffer(base64.b64decode(encoded["data"]), np.uint8).astype(np.float64)
    lo, hi = np.array(encoded["lo"]), np.array(encoded["hi"])
    q = q.reshape(len(lo), -1)
    return (lo[:, None] + q * (hi - lo)[:, None] / 255).reshape(encoded["shape"]), (hi - lo) / 255


def post(client, path, payload, session=SESSION):
    return client.post(path, json=payload, headers=session)


def forward(client, session=SESSION, pixels=None):
    pixels = drawn_digit() if pixels is None else pixels
    response = post(client, "/api/forward", {"pixels": pixels_b64(pixels)}, session)
    assert response.status_code == 200, response.text
    return response.json()


def arithmetic(client, layer, channel, y=0, x=0):
    payload = {
        "pixels": pixels_b64(drawn_digit()),
        "layer": layer,
        "channel": channel,
        "y": y,
        "x": x,
    }
    response = post(client, "/api/arithmetic", payload)
    assert response.status_code == 200, response.text
    return response.json()


def test_model_lists_every_layer_with_shape_and_parameters(client, reference):
    model, config, outputs = reference
    answer = client.get("/api/model", headers=SESSION).json()
    layers = list(model)
    assert [layer["type"] for layer in answer["layers"]] == [type(m).__name__ for m in layers]
    assert [layer["shape"] for layer in answer["layers"]] == [list(o.shape) for o in outputs[1:]]
    assert [layer["params"] for layer in answer["layers"]] == [
        sum(p.numel() for p in m.parameters()) for m in layers
    ]
    assert answer["params"] == sum(p.numel() for p in model.parameters())
    assert answer["classes"] == config["classes"]
    assert answer["input_shape"] == config["input_shape"]
    assert answer["layers"][3]["symmetry"] == "x"


def test_forward_pass_equals_the_model(client, reference):
    model, config, outputs = reference
    view = forward(client)
    np.testing.assert_array_equal(view["logits"], outputs[-1].astype(np.float64))
    logits = outputs[-1].astype(np.float64)
    expected = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    np.testing.assert_allclose(view["probabilities"], expected, rtol=1e-12)
    assert view["prediction"] == int(np.argmax(outputs[-1]))
    for encoded, output in zip([view["input"], *view["layers"]], outputs, strict=True):
        values, step = decoded(encoded)
        assert values.shape == output.shape
        flat = output.reshape(len(step), -1)
        np.testing.assert_array_equal(encoded["lo"], flat.min(axis=1))
        np.testing.assert_array_equal(encoded["hi"], flat.max(axis=1))
        error = np.abs(values - output).reshape(len(step), -1)
        assert (error <= step[:, None] / 2 + 1e-6).all()  # within half a quantisation step


def test_forward_can_centre_a_drawing_like_mnist(client):
    corner = np.zeros((1, 28, 28), np.uint8)
    corner[0, 1:8, 1:4] = 255  # a small stroke in the top-left corner
    view = post(
        client, "/api/forward", {"pixels": pixels_b64(corner), "centre": True}, SESSION
    ).json()
    seen = np.frombuffer(base64.b64decode(view["pixels"]), np.uint8).reshape(28, 28)
    rows, cols = np.nonzero(seen)
    assert 10 <= rows.mean() <= 17 and 10 <= cols.mean() <= 17  # moved to the centre
    assert seen.max() == 255 and rows.max() - rows.min() >= 15  # scaled up to ~20 pixels


def naive_conv(x, weight, bias, channel, y, x_, stride, padding):
    """One output of a convolution as a loop over the kernel: the definition."""
    (top, _), (left, _) = padding
    total = 0.0
    for c in range(weight.shape[1]):
        for p in range(weight.shape[2]):
            for q in range(weight.shape[3]):
                row, col = y * stride[0] - top + p, x_ * stride[1] - left + q
                if 0 <= row < x.shape[1] and 0 <= col < x.shape[2]:
                    total += float(x[c, row, col]) * float(weight[channel, c, p, q])
    return total + float(bias[channel])


@pytest.mark.parametrize(
    "layer,positions",
    [
        (0, [(0, 0, 0), (1, 14, 13), (3, 27, 27), (2, 7, 17)]),  # corners read the padding
        (3, [(0, 0, 0), (5, 6, 6), (2, 3, 4)]),  # stride 2, padding 1, symmetric kernels
    ],
)
def test_conv_arithmetic_adds_up_to_the_feature_map(client, reference, layer, positions):
    model, _, outputs = reference
    conv = model[layer]
    weight = conv.materialize()
    for channel, y, x in positions:
        a = arithmetic(client, layer, channel, y, x)
        expected = naive_conv(
            outputs[layer],
            weight,
            conv.bias.array,
            channel,
            y,
            x,
            conv.stride,
            conv.geometry.padding,
        )
        engine = float(outputs[layer + 1][channel, y, x])
        assert a["engine"] == engine
        assert a["sum"] + a["bias"] == pytest.approx(a["value"], abs=1e-12)
        assert a["value"] == pytest.approx(expected, abs=1e-9)
        assert a["value"] == pytest.approx(engine, abs=1e-5)
        assert a["bias"] == float(conv.bias.array[channel])
        for term in a["terms"]:
            window, kernel = np.array(term["window"]), np.array(term["kernel"])
            np.testing.assert_array_equal(kernel, weight[channel, term["in_channel"]])
            np.testing.assert_array_equal(np.array(term["products"]), window * kernel)
            assert term["sum"] == pytest.approx(float((window * kernel).sum()), abs=1e-12)
            padded = np.pad(outputs[layer][term["in_channel"]], 1)  # both convs pad by 1
            r0, c0 = y * conv.stride[0], x * conv.stride[1]
            np.testing.assert_array_equal(window, padded[r0 : r0 + 3, c0 : c0 + 3])
        assert a["activation"]["value"] == float(outputs[layer + 2][channel, y, x])
        assert a["activation"]["value"] == max(0.0, engine)


def test_max_pool_arithmetic_names_the_winner(client, reference):
    _, _, outputs = reference
    for channel, y, x in [(0, 0, 0), (2, 7, 9), (3, 13, 13)]:
        a = arithmetic(client, 2, channel, y, x)
        window = outputs[2][channel, 2 * y : 2 * y + 2, 2 * x : 2 * x + 2]
        np.testing.assert_array_equal(np.array(a["window"]), window)
        p, q = a["winner"]
        assert window[p, q] == window.max()
        assert a["rows"][p] == 2 * y + p and a["cols"][q] == 2 * x + q
        assert a["value"] == a["engine"] == float(outputs[3][channel, y, x])


def test_average_pool_arithmetic_counts_the_padding(client, reference):
    _, _, outputs = reference
    padded = np.pad(outputs[5], ((0, 0), (1, 1), (1, 1)))
    for channel, y, x in [(0, 0, 0), (4, 2, 3), (5, 3, 3)]:
        a = arithmetic(client, 5, channel, y, x)
        window = padded[channel, 2 * y : 2 * y + 2, 2 * x : 2 * x + 2]
        assert a["divisor"] == 4  # count_include_pad: padding cells count
        assert a["sum"] == pytest.approx(float(window.astype(np.float64).sum()), abs=1e-12)
        assert a["value"] == pytest.approx(a["engine"], abs=1e-6)
        assert a["engine"] == float(outputs[6][channel, y, x])


def test_dense_contributions_sum_to_the_logit(client, reference):
    model, _, outputs = reference
    linear = model[7]
    inputs = outputs[7].astype(np.float64)
    for channel in range(10):
        a = arithmetic(client, 7, channel)
        products = linear.weight.array[channel].astype(np.float64) * inputs
        top = [t["index"] for t in a["top"]]
        assert top == list(np.argsort(-np.abs(products), kind="stable")[: len(top)])
        for t in a["top"]:
            assert t["product"] == t["w"] * t["x"] == products[t["index"]]
        assert sum(t["product"] for t in a["top"]) + a["rest"] == pytest.approx(a["sum"])
        assert a["positive"] + a["negative"] == pytest.approx(a["sum"])
        assert a["sum"] == pytest.approx(float(products.sum()), abs=1e-12)
        assert a["value"] == pytest.approx(a["sum"] + a["bias"], abs=1e-12)
        assert a["value"] == pytest.approx(float(outputs[8][channel]), abs=1e-5)
        assert a["engine"] == float(outputs[8][channel])


def test_flatten_and_activation_arithmetic(client, reference):
    _, _, outputs = reference
    a = arithmetic(client, 6, 37)
    assert a["from"] == list(np.unravel_index(37, outputs[6].shape))
    assert a["value"] == a["engine"] == float(outputs[7][37])
    a = arithmetic(client, 1, 2, 10, 12)
    assert a["input"] == float(outputs[1][2, 10, 12])
    assert a["value"] == a["engine"] == max(0.0, a["input"])


def test_kernels_with_their_spectra_and_classes(client, reference):
    model, _, _ = reference
    answer = client.get("/api/kernels?layer=0", headers=SESSION).json()
    weight = model[0].materialize()
    assert answer["shape"] == list(weight.shape)
    for o, info in enumerate(answer["kernels"]):
        assert info["class"] == frequency.classify(weight[o])
    spectra, step = decoded(answer["spectra"])
    expected = np.stack([frequency.frequency_response(w) for w in weight])
    assert (np.abs(spectra - expected) <= step[:, None, None] / 2 + 1e-6).all()
    assert "sobel-x:3" in answer["presets"] and "gabor:3:0" in answer["presets"]
    symmetric = client.get("/api/kernels?layer=3", headers=SESSION).json()
    assert symmetric["symmetry"] == "x"
    assert all("x" in info["symmetry"] for info in symmetric["kernels"])
    detail = client.get("/api/kernel?layer=3&channel=2", headers=SESSION).json()
    np.testing.assert_array_equal(detail["values"], model[3].materialize()[2])
    assert detail["symmetry"]["residual"]["x"] == 0.0


def test_edit_changes_downstream_maps_and_reset_restores(client, reference):
    model, config, outputs = reference
    session = {"X-Kernelab-Session": "editing-session"}
    edit = post(client, "/api/kernel", {"layer": 0, "channel": 1, "spec": "sobel-x"}, session)
    assert edit.status_code == 200, edit.text
    np.testing.assert_array_equal(edit.json()["values"][0], kernels.sobel_x())
    view = forward(client, session)
    trained = model[0].weight.array[1].copy()
    model[0].weight.array[1] = kernels.sobel_x()  # the same edit on our own copy
    try:
        edited = layer_outputs(model, config, drawn_digit())
    finally:
        model[0].weight.array[1] = trained
    np.testing.assert_array_equal(view["logits"], edited[-1].astype(np.float64))
    first, _ = decoded(view["layers"][0])
    assert np.abs(first[1] - outputs[1][1]).max() > 0.1  # the edited kernel's map changed
    np.testing.assert_allclose(first[0], outputs[1][0], atol=decoded(view["layers"][0])[1][0])
    typed = [[0, 0, 0], [0, 2, 0], [0, 0, 0]]
    edit = post(client, "/api/kernel", {"layer": 0, "channel": 1, "values": typed}, session)
    assert edit.json()["values"][0] == typed
    assert forward(client, session)["edits"] == 1
    reset = post(client, "/api/kernel/reset", {"layer": 0, "channel": 1}, session).json()
    assert reset == {"reset": 1, "edits": 0}
    np.testing.assert_array_equal(forward(client, session)["logits"], outputs[-1])


def test_sessions_do_not_see_each_others_edits(client, reference):
    _, _, outputs = reference
    a, b = {"X-Kernelab-Session": "tab-number-one"}, {"X-Kernelab-Session": "tab-number-two"}
    post(client, "/api/kernel", {"layer": 0, "channel": 0, "spec": "laplacian"}, a)
    assert forward(client, a)["logits"] != forward(client, b)["logits"]
    np.testing.assert_array_equal(forward(client, b)["logits"], outputs[-1])
    assert client.get("/api/kernels?layer=0", headers=b).json()["kernels"][0]["edited"] is False
    post(client, "/api/kernel/reset", {}, a)
    np.testing.assert_array_equal(forward(client, a)["logits"], outputs[-1])


def test_symmetric_layer_keeps_its_symmetry_when_edited(client):
    session = {"X-Kernelab-Session": "symmetric-tab"}
    answer = post(
        client,
        "/api/kernel",
        {"layer": 3, "channel": 0, "in_channel": 1, "values": [[1, 2, 3], [0, 0, 0], [0, 0, 0]]},
        session,
    ).json()
    assert answer["values"][1] == [[0.5, 1.0, 1.5], [0, 0, 0], [0.5, 1.0, 1.5]]  # flip-ud mean
    assert "x" in answer["symmetry"]["exact"]
    assert "its symmetric part was stored" in answer["done"]


def test_save_as_new_run_leaves_the_run_untouched(client, run_dir):
    def fingerprint():
        return {  # every file, the timeline's included
            str(p.relative_to(run_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(run_dir.rglob("*"))
            if p.is_file()
        }

    before = fingerprint()
    session = {"X-Kernelab-Session": "saving-session"}
    post(client, "/api/kernel", {"layer": 0, "channel": 2, "spec": "gaussian:3"}, session)
    answer = post(client, "/api/save", {"name": "tiny-sobel"}, session)
    assert answer.status_code == 200, answer.text
    saved = run_dir.parent / "tiny-sobel"
    assert answer.json()["path"] == str(saved)
    model, config, _ = runs.load_run(saved)
    np.testing.assert_allclose(model[0].weight.array[2, 0], kernels.gaussian(3), rtol=1e-6)
    assert config["edits"][0]["edit"].startswith("gaussian:3")
    assert json.loads((saved / "edits.json").read_text())["from"] == str(run_dir)
    again = post(client, "/api/save", {"name": "tiny-sobel"}, session)
    assert again.status_code == 409 and "already exists" in again.json()["error"]
    default = post(client, "/api/save", {}, session).json()
    assert default["name"] == "tiny-edited"
    assert fingerprint() == before


def test_learning_curves_and_test_set(client, run_dir, mnist_dir):
    curves = client.get("/api/training", headers=SESSION).json()["curves"]
    assert curves == json.loads((run_dir / "metrics.json").read_text())["epochs"]
    assert client.app.state.explainer.test_set.wait(timeout=60)
    summary = client.get("/api/testset", headers=SESSION).json()
    assert summary["available"] and summary["ready"] and summary["count"] == 120
    matrix = np.array(summary["confusion"])
    assert matrix.sum() == 120
    assert summary["accuracy"] == pytest.approx(np.trace(matrix) / 120)
    wrong = summary["misclassified"]
    assert len(wrong) == 120 - np.trace(matrix)
    assert all(m["label"] != m["predicted"] for m in wrong)
    image = client.get(f"/api/testset/{wrong[0]['index']}", headers=SESSION).json()
    assert image["label"] == wrong[0]["label"] and image["predicted"] == wrong[0]["predicted"]
    gallery = np.frombuffer(base64.b64decode(summary["pixels"]), np.uint8)
    first = np.frombuffer(base64.b64decode(image["pixels"]), np.uint8)
    np.testing.assert_array_equal(gallery[:784], first)


def test_a_test_set_that_is_not_here_hides_itself(run_dir, tmp_path):
    from kernelab.apps.explain.source import load_source

    source = load_source(run_dir)
    source.config = dict(source.config, data="kmnist", data_dir=str(tmp_path))  # no files
    with TestClient(create_app(source)) as client:
        summary = client.get("/api/testset", headers=SESSION).json()
        assert summary["available"] is False
        assert summary["reason"].startswith("test set unavailable: KMNIST")
        response = client.get("/api/testset/0", headers=SESSION)
        assert response.status_code == 404 and "unavailable" in response.json()["error"]


def softmax(logits):
    e = np.exp(logits - logits.max())
    return e / e.sum()


def test_forward_gives_the_trained_models_answer_beside_an_edited_one(client, reference):
    model, config, outputs = reference
    session = {"X-Kernelab-Session": "baseline-session"}
    trained = outputs[-1].astype(np.float64)
    view = forward(client, session)  # no edits: the baseline is the answer itself
    assert view["baseline_logits"] == view["logits"]
    assert view["baseline_prediction"] == view["prediction"] == int(trained.argmax())
    post(client, "/api/kernel", {"layer": 0, "channel": 2, "spec": "sobel-y"}, session)
    other = drawn_digit()[:, ::-1].copy()  # an input seen for the first time after the edit
    for pixels in (drawn_digit(), other):
        view = forward(client, session, pixels)
        kept = model[0].weight.array[2].copy()
        model[0].weight.array[2] = kernels.sobel_y()  # the same edit on our own copy
        try:
            edited = layer_outputs(model, config, pixels)[-1].astype(np.float64)
        finally:
            model[0].weight.array[2] = kept
        trained = layer_outputs(model, config, pixels)[-1].astype(np.float64)
        assert np.abs(edited - trained).max() > 1e-3  # the edit changes the answer
        np.testing.assert_array_equal(view["logits"], edited)
        np.testing.assert_array_equal(view["baseline_logits"], trained)
        np.testing.assert_allclose(view["baseline_probabilities"], softmax(trained), rtol=1e-12)
        assert view["baseline_prediction"] == int(trained.argmax())
    post(client, "/api/kernel/reset", {}, session)
    view = forward(client, session, other)
    assert view["logits"] == view["baseline_logits"]
