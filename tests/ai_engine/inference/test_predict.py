from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

from ai_engine.inference.decode import load_fundus_image
from ai_engine.inference.package import ModelPackage
from ai_engine.inference.predict import STAGES, Predictor, analyse_images

from .conftest import icdr_labels


def photos(count: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (80 + 10 * i, 96, 3), dtype=np.uint8) for i in range(count)]


def test_multilabel_probabilities_and_thresholds(make_package) -> None:
    predictor = Predictor(ModelPackage.load(make_package(), "cpu"))
    predictions = predictor.predict(photos(3))
    assert len(predictions) == 3
    for prediction in predictions:
        assert [f.code for f in prediction.findings] == list("NDGCAHMO")
        for finding in prediction.findings:
            assert 0.0 < finding.probability < 1.0
            assert finding.positive == (finding.probability >= finding.threshold)
        assert prediction.grade is None
        assert set(prediction.timings) == {"crop", "forward"}


def test_multiclass_grade_is_the_argmax(make_package) -> None:
    folder = make_package(
        task="multiclass", labels=icdr_labels(5), dr_grading={"scheme": "icdr_0_4"}
    )
    predictor = Predictor(ModelPackage.load(folder, "cpu"))
    for prediction in predictor.predict(photos(2)):
        probabilities = [f.probability for f in prediction.findings]
        assert sum(probabilities) == pytest.approx(1.0, abs=1e-6)  # float32 softmax
        top = int(np.argmax(probabilities))
        assert [f.positive for f in prediction.findings] == [i == top for i in range(5)]
        assert prediction.grade == f"dr{top}"
        assert prediction.referable == (top >= 2)
        assert prediction.referable_probability == pytest.approx(sum(probabilities[2:]))


def test_binary_is_one_sigmoid(make_package) -> None:
    folder = make_package(
        task="binary",
        labels=[
            {
                "code": "abnormal",
                "zh": "异常",
                "en": "abnormal",
                "threshold": 0.3,
                "referable": True,
            }
        ],
    )
    package = ModelPackage.load(folder, "cpu")
    predictor = Predictor(package)
    image = photos(1)[0]
    prediction = predictor.predict([image])[0]
    tensor, _ = predictor.prepare(image)
    with torch.inference_mode():
        expected = torch.sigmoid(package.model(tensor[None]))[0, 0].item()
    assert len(prediction.findings) == 1
    assert prediction.findings[0].probability == pytest.approx(expected, abs=1e-6)
    assert prediction.findings[0].positive == (expected >= 0.3)


def test_batched_equals_unbatched(make_package) -> None:
    predictor = Predictor(ModelPackage.load(make_package(), "cpu"))
    images = photos(5)
    batched = predictor.predict(images, batch_size=5)
    single = [predictor.predict([image])[0] for image in images]
    for a, b in zip(batched, single, strict=True):
        assert np.allclose(
            [f.probability for f in a.findings], [f.probability for f in b.findings], atol=1e-5
        )


def test_cam_targets(make_package) -> None:
    predictor = Predictor(ModelPackage.load(make_package(), "cpu"))
    prediction = predictor.predict(photos(1))[0]
    for finding in prediction.findings:
        finding.positive = finding.code in ("N", "G", "M")
    assert predictor.cam_targets(prediction) == [2, 6]  # G and M; N is the normal label
    for finding in prediction.findings:
        finding.positive = False
    top = max(range(1, 8), key=lambda i: prediction.findings[i].probability)
    assert predictor.cam_targets(prediction) == [top]


def test_pipeline_without_shared_data(make_package) -> None:
    package = ModelPackage.load(make_package(), "cpu")
    black = io.BytesIO()
    Image.new("RGB", (300, 300)).save(black, "PNG")
    results = analyse_images(
        [black.getvalue(), b"not an image"], [package], "cpu", eyes=["OD", "OS"]
    )
    assert results[0].error is None
    assert results[0].gradable is False
    assert results[0].quality.reasons[0] == "no_fundus"
    assert results[0].predictions == []
    assert results[1].error == "not a recognised image format"
    assert results[1].predictions == []
    json.dumps([r.to_dict() for r in results])


def test_pipeline_on_real_photos(make_package, data_dir) -> None:
    package = ModelPackage.load(make_package(), "cpu")
    sources = [
        data_dir / "fundus/images/odir/normal/2996_left.jpg",
        data_dir / "reference" / "retina_cc0.jpg",
    ]
    results = analyse_images(sources, [package], "cpu", eyes=["OS", "OS"])
    for result in results:
        assert result.gradable is True
        assert set(STAGES) | {"total"} == set(result.timings)
        assert result.landmarks is not None and result.landmarks.disc_found is True
        assert result.landmarks.disc[0] < 0.35  # a left eye: disc on the left
        prediction = result.predictions[0]
        explained = [f for f in prediction.findings if f.heatmap is not None]
        expected = [f for f in prediction.findings if f.positive and not f.normal] or [
            max((f for f in prediction.findings if not f.normal), key=lambda f: f.probability)
        ]
        assert [f.code for f in explained] == [f.code for f in expected]
        for finding in explained:
            assert finding.heatmap.shape == (64, 64)
            image = Image.open(io.BytesIO(finding.overlay_png))
            assert image.size == (min(1200, result.width), min(1200, result.height))
            assert finding.cam_method in ("gradcam", "gradcam++", "layercam")
        encoded = json.loads(json.dumps(result.to_dict()))
        assert encoded["predictions"][0]["model"] == {
            "name": "tiny",
            "version": "0.1",
            "task": "multilabel",
        }
        assert "overlay_png" not in encoded["predictions"][0]["findings"][0]


def test_a_camera_photo_is_analysed_on_a_working_copy_but_reported_in_its_own_pixels(
    make_package, data_dir
) -> None:
    package = ModelPackage.load(make_package(), "cpu")
    photo = data_dir / "highres" / "1.jpg"
    working = analyse_images([photo.read_bytes()], [package], "cpu")[0]
    full = analyse_images([load_fundus_image(photo.read_bytes())], [package], "cpu")[0]

    assert (working.width, working.height) == (full.width, full.height) == (4752, 3168)
    assert working.quality.gradable == full.quality.gradable
    assert working.quality.metrics["diameter_px"] == pytest.approx(
        full.quality.metrics["diameter_px"], rel=0.01
    )
    for a, b in zip(working.predictions[0].findings, full.predictions[0].findings, strict=True):
        assert a.probability == pytest.approx(b.probability, abs=0.02)


def test_dr_operating_point_decides_referable(make_package) -> None:
    folder = make_package(
        task="multiclass",
        labels=icdr_labels(5),
        dr_grading={"scheme": "icdr_0_4", "referable_threshold": 0.01},
    )
    prediction = Predictor(ModelPackage.load(folder, "cpu")).predict(photos(1))[0]
    assert prediction.referable_probability >= 0.01
    assert prediction.referable  # whatever the argmax grade: P(>= R2) reaches the threshold


def test_test_time_flip_averages_the_photo_and_its_mirror(make_package) -> None:
    plain = ModelPackage.load(
        make_package("plain", task="multiclass", labels=icdr_labels(5)), "cpu"
    )
    flipped = ModelPackage.load(
        make_package("flipped", task="multiclass", labels=icdr_labels(5), tta=["hflip"]), "cpu"
    )
    predictor = Predictor(flipped)
    tensor, _ = predictor.prepare(photos(1)[0])
    batch = tensor[None]
    with torch.inference_mode():
        direct = torch.softmax(plain.model(batch), dim=1)
        mirror = torch.softmax(plain.model(torch.flip(batch, dims=[3])), dim=1)
    assert not torch.allclose(direct, mirror)  # the check below could not pass by accident
    expected = ((direct + mirror) / 2)[0].double().numpy()
    assert predictor.probabilities(batch)[0] == pytest.approx(expected, abs=1e-6)
    assert Predictor(plain).probabilities(batch)[0] == pytest.approx(
        direct[0].double().numpy(), abs=1e-6
    )


def _dr_predictor(make_package, threshold: float | None = 0.3) -> Predictor:
    grading = {"scheme": "icdr_0_4", "referable_from": 2, "vision_threatening_from": 3}
    if threshold is not None:
        grading["referable_threshold"] = threshold
    folder = make_package(task="multiclass", labels=icdr_labels(5), dr_grading=grading)
    return Predictor(ModelPackage.load(folder, "cpu"))


def test_a_dr_models_heatmap_is_its_argmax_grade(make_package) -> None:
    predictor = _dr_predictor(make_package)
    prediction = predictor.findings_from(np.array([0.05, 0.05, 0.2, 0.55, 0.15]))
    assert predictor.cam_targets(prediction) == [3]  # R3, the grade every surface shows


def test_a_dr_eye_referable_at_the_operating_point_also_explains_its_referable_grade(
    make_package,
) -> None:
    # argmax R1, P(>=R2) = 0.35 >= 0.30: referable, so the heatmap of the most probable
    # referable grade (R2) is drawn too, not only R1's
    predictor = _dr_predictor(make_package)
    prediction = predictor.findings_from(np.array([0.2, 0.45, 0.25, 0.07, 0.03]))
    assert predictor.cam_targets(prediction) == [1, 2]
    assert prediction.referable is True
    assert prediction.referable_probability == pytest.approx(0.35)
    # the same photo under a card without an operating point: R1 decides, not referable
    plain = _dr_predictor(make_package, threshold=None)
    prediction = plain.findings_from(np.array([0.2, 0.45, 0.25, 0.07, 0.03]))
    assert plain.cam_targets(prediction) == [1] and prediction.referable is False


def test_the_dme_heatmap_is_the_dme_label(make_package) -> None:
    folder = make_package(
        task="binary",
        labels=[{"code": "DME", "zh": "糖尿病黄斑水肿", "en": "DME", "threshold": 0.4}],
    )
    predictor = Predictor(ModelPackage.load(folder, "cpu"))
    for p in (0.7, 0.1):  # positive, or not: the one label is what the heatmap explains
        assert predictor.cam_targets(predictor.findings_from(np.array([p]))) == [0]
