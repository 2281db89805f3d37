import io
import json
import shutil

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from ai_engine.models import ModelPackage


def test_validate_model_runs_a_real_photo_and_reports(package_folder, shared_data, capsys):
    call_command(
        "validate_model",
        str(package_folder),
        "--image",
        str(shared_data / "reference" / "retina_cc0.jpg"),
    )
    out = capsys.readouterr().out
    assert "Package     tiny-odir 0.1 (multilabel, resnet10t, input 64px)" in out
    assert "Demonstration model — not for diagnosis" in out
    assert "gradable" in out
    assert "tiny-odir 0.1 is valid." in out


def test_validate_model_reports_a_quality_models_verdict(tmp_path, shared_data, capsys):
    from ai_engine.inference.package import write_package
    from tests.ai_engine.inference.conftest import quality_card_dict, tiny_model

    card = quality_card_dict(reject_threshold=1e-6)
    write_package(tmp_path / "tiny-quality", tiny_model(card), card)
    call_command(
        "validate_model",
        str(tmp_path / "tiny-quality"),
        "--image",
        str(shared_data / "reference" / "retina_cc0.jpg"),
    )
    out = capsys.readouterr().out
    assert "Quality model P(reject)=" in out and "t=0.000: REJECTED" in out
    assert "'quality_model'" in out
    assert "tiny-quality 0.1 is valid." in out


def test_validate_model_explains_a_broken_card(package_folder, tmp_path, shared_data):
    broken = tmp_path / "broken"
    shutil.copytree(package_folder, broken)
    card = json.loads((broken / "model.json").read_text())
    card["labels"][2]["threshold"] = 7
    (broken / "model.json").write_text(json.dumps(card))
    with pytest.raises(CommandError, match=r"labels\[2\]\.threshold"):
        call_command(
            "validate_model",
            str(broken),
            "--image",
            str(shared_data / "reference" / "retina_cc0.jpg"),
        )


def test_validate_model_refuses_tampered_weights(package_folder, tmp_path, shared_data):
    tampered = tmp_path / "tampered"
    shutil.copytree(package_folder, tampered)
    weights = tampered / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-4] + b"evil")
    with pytest.raises(CommandError, match="does not match"):
        call_command(
            "validate_model",
            str(tampered),
            "--image",
            str(shared_data / "reference" / "retina_cc0.jpg"),
        )


def test_register_activate_and_list(db, package_folder, capsys):
    call_command("register_model", str(package_folder))
    assert ModelPackage.objects.get().is_active is False
    call_command("register_model", str(package_folder), "--activate-if-none")
    assert ModelPackage.objects.get().is_active is True
    call_command("activate_model", "tiny-odir", "0.1", "--off")
    assert ModelPackage.objects.get().is_active is False
    call_command("activate_model")
    assert "inactive tiny-odir 0.1 (demonstration)" in capsys.readouterr().out


def test_the_same_version_with_other_weights_is_refused(db, package_folder, tmp_path):
    call_command("register_model", str(package_folder))
    other = tmp_path / "other"
    shutil.copytree(package_folder, other)
    from ai_engine.inference.package import write_package
    from tests.ai_engine.inference.conftest import card_dict, tiny_model

    card = card_dict(name="tiny-odir", version="0.1")
    write_package(other, tiny_model(card, seed=99), card)
    with pytest.raises(CommandError, match="already registered with other weights"):
        call_command("register_model", str(other))
    assert ModelPackage.objects.count() == 1


def test_an_unknown_package_name_lists_what_exists(db):
    with pytest.raises(CommandError, match="Registered: none"):
        call_command("activate_model", "nope")


def test_bundled_registration_activates_only_the_default_package(db, tmp_path, settings):
    from ai_engine.inference.package import write_package
    from tests.ai_engine.inference.conftest import card_dict, tiny_model

    for name in ("ophai-screening", "ophai-demo-screening"):
        card = card_dict(name=name, version="1.0")
        write_package(tmp_path / name, tiny_model(card), card)
    settings.AI_MODEL_DIRS = [str(tmp_path)]
    settings.AI_DEFAULT_PACKAGES = ["ophai-screening"]
    call_command("register_model", "--bundled", "--activate-if-none", stdout=io.StringIO())
    assert {p.name: p.is_active for p in ModelPackage.objects.all()} == {
        "ophai-screening": True,
        "ophai-demo-screening": False,
    }
    # Once a package is active, a second run changes nothing.
    call_command("activate_model", "ophai-screening", "1.0", "--off", stdout=io.StringIO())
    call_command("activate_model", "ophai-demo-screening", "1.0", stdout=io.StringIO())
    call_command("register_model", "--bundled", "--activate-if-none", stdout=io.StringIO())
    assert {p.name: p.is_active for p in ModelPackage.objects.all()} == {
        "ophai-screening": False,
        "ophai-demo-screening": True,
    }


def test_an_active_quality_model_does_not_stop_the_default_package_from_being_activated(
    db, tmp_path, settings
):
    from ai_engine.inference.package import write_package
    from ai_engine.services import package_register
    from tests.ai_engine.inference.conftest import card_dict, quality_card_dict, tiny_model

    gate = quality_card_dict()
    write_package(tmp_path / "gate" / "tiny-quality", tiny_model(gate), gate)
    package_register(path=tmp_path / "gate" / "tiny-quality", activate=True)
    card = card_dict(name="ophai-screening", version="1.0")
    write_package(tmp_path / "bundled" / "ophai-screening", tiny_model(card), card)
    settings.AI_MODEL_DIRS = [str(tmp_path / "bundled")]
    settings.AI_DEFAULT_PACKAGES = ["ophai-screening"]
    call_command("register_model", "--bundled", "--activate-if-none", stdout=io.StringIO())
    assert {p.name: p.is_active for p in ModelPackage.objects.all()} == {
        "ophai-screening": True,
        "tiny-quality": True,
    }


def test_a_first_installation_activates_without_the_gate_and_only_once(
    db, package_folder, tmp_path
):
    from ai_engine.inference.package import write_package
    from ai_engine.services import packages_install
    from tests.ai_engine.inference.conftest import card_dict, tiny_model

    # Given a fresh clinic: register_model --activate installs without an override
    call_command("register_model", str(package_folder), "--activate", stdout=io.StringIO())
    assert ModelPackage.objects.get().state == "active"
    # When a second package is installed once one is active
    card = card_dict(name="other", version="0.1")
    write_package(tmp_path / "other", tiny_model(card), card)
    call_command("register_model", str(tmp_path / "other"), stdout=io.StringIO())
    other = ModelPackage.objects.get(name="other")
    with pytest.raises(ValidationError, match="not a first installation"):
        packages_install(packages=[other])
    # Then nothing changed
    assert ModelPackage.objects.get(pk=other.pk).state == "inactive"


def test_train_model_refuses_an_unknown_main_condition(tmp_path):
    with pytest.raises(CommandError, match="--main-condition 'retina'"):
        call_command(
            "train_model", "--data", str(tmp_path / "none.csv"), "--main-condition", "retina",
            "--out", str(tmp_path / "out"),
        )  # fmt: skip
    assert not (tmp_path / "out").exists()
