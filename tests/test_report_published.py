"""Each published number stands beside the registered gmbench models that reimplement it, or is shown
as a reference only: no row may name a model that does not exist."""
from gmbench.registry import MODELS
from gmbench.report.published import published_for, published_frame


def test_every_published_row_names_registered_models_or_is_reference_only():
    frame = published_frame()
    cells = dict(zip(frame["published_model"], frame["gmbench_models"]))
    assert cells == {
        "NS GAN": "dcgan, gan-mlp", "WGAN-GP": "wgan-gp", "VAE (cross-entropy decoder)": "vae",
        "2-Stage VAE": "vae-2stage", "WGAN": "none (reference only)", "LSGAN": "none (reference only)",
        "DRAGAN": "none (reference only)", "MM GAN": "none (reference only)", "BEGAN": "none (reference only)",
    }
    named = {m for cell in cells.values() if cell != "none (reference only)" for m in cell.split(", ")}
    assert named <= set(MODELS.names())


def test_published_for_finds_the_row_of_a_model_and_none_for_others():
    assert (published_for("gan-mlp").model, published_for("gan-mlp").mean) == ("NS GAN", 6.8)
    assert published_for("vae-2stage").model == "2-Stage VAE"
    assert published_for("flow-matching") is None and published_for("wgan") is None
