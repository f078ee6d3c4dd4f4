"""Suite loading: every mistake is caught when the suite is read, before any training."""
import pytest

from gmbench.bench.suite import Budget, builtin_suites, load_suite, parse_suite, resolve_suite_path, suite_name
from gmbench.errors import GmbenchError

BASE = """
[budget]
steps = 5
[models.ddpm]
budget = {{ seconds = 9, batch_size = 4 }}
{variants}
[models.dcgan]
width = 8
"""


def parse(variants="", **kwargs):
    return parse_suite(BASE.format(variants=variants), "t", **kwargs)


def test_builtin_suites_load_and_expand_to_jobs():
    for name in ("smoke", "smoke-rgb", "quick", "standard"):
        suite = load_suite(name)
        assert suite.jobs() and all(job.job_id.endswith(f"-s{job.seed}") for job in suite.jobs())
    assert len(load_suite("standard").seeds) == 3


def test_quick_suite_caps_its_training_inside_the_15_minute_bound():
    """A check of the suite file, not of a clock: every trained job of `make run` has a step budget and a
    seconds cap, and the caps add up to at most 12 of the 15 minutes, leaving 3 to sampling and scoring."""
    from gmbench.registry import MODELS

    trained = [m for m in load_suite("quick").models if MODELS.get(m.name).trainable]
    assert trained and all(m.budget.steps and m.budget.seconds for m in trained)
    configured_caps = [m.budget.seconds for m in trained]  # numbers written in quick.toml
    assert sum(configured_caps) <= 720  # 12 of `make run`'s 15 minutes


def test_model_budget_inherits_and_overrides_defaults():
    suite = parse()
    ddpm, dcgan = suite.models
    assert ddpm.budget == Budget(steps=5, seconds=9, batch_size=4)
    assert dcgan.budget == Budget(steps=5) and dcgan.overrides == {"width": 8}
    assert ddpm.variants == ()


def test_variants_are_checked_against_sampling_fields():
    suite = parse('variants = [{ name = "ddim-50", sampler = "ddim", sample_steps = 50 },'
                  ' { sampler = "ddpm", sample_steps = 1000, n_samples = 64 }]')
    variants = suite.models[0].variants
    assert [(v.name, v.n_samples) for v in variants] == [("ddim-50", None), ("sampler=ddpm-sample_steps=1000", 64)]
    with pytest.raises(GmbenchError, match="unknown key 'lr'. Valid keys: clip_sample, sample_steps, sampler, sampler_options"):
        parse('variants = [{ lr = 1.0 }]')
    with pytest.raises(GmbenchError, match="8 samples are too few: is needs 10"):
        parse('variants = [{ name = "a", sample_steps = 5, n_samples = 8 }]', set_options={"metrics": {"names": "fid,is"}})
    timing_only = parse('variants = [{ name = "a", sample_steps = 5, n_samples = 8, metrics = [] }]')
    assert timing_only.models[0].variants[0].metrics == ()
    with pytest.raises(GmbenchError, match="unique"):
        parse('variants = [{ name = "a", sample_steps = 5 }, { name = "a", sample_steps = 6 }]')


def test_set_options_scopes():
    suite = parse(set_options={"model": {"lr": "1e-3"}, "dcgan": {"width": "4"}, "budget": {"steps": "7"}})
    ddpm, dcgan = suite.models
    assert dcgan.overrides == {"width": "4", "lr": "1e-3"} and ddpm.overrides["lr"] == "1e-3"
    assert dcgan.budget.steps == 7 and ddpm.budget == Budget(steps=7, seconds=9, batch_size=4)
    assert parse(set_options={"budget": {"seconds": "3"}}).models[0].budget.seconds == 3  # beats the model's 9
    with pytest.raises(GmbenchError, match="no model of suite 't' has a config key 'zzz'"):
        parse(set_options={"model": {"zzz": "1"}})
    with pytest.raises(GmbenchError, match="'vae' is neither a model of suite"):
        parse(set_options={"vae": {"lr": "1"}})


def test_seeds_and_model_subset():
    suite = parse(seeds=[3, 4], models=["dcgan"])
    assert [j.job_id for j in suite.jobs()] == ["dcgan-mnist-s3", "dcgan-mnist-s4"]


@pytest.mark.parametrize("text, message", [
    ("[models.dcgan]\n", "no training budget"),
    ("[budget]\nsteps = 1\n", "names no models"),
    ("bogus = 1\n[budget]\nsteps=1\n[models.dcgan]\n", "unknown top-level keys bogus"),
    ("seeds = [-1]\n[budget]\nsteps=1\n[models.dcgan]\n", "seeds must be"),
    ("[budget]\nsteps = -1\n[models.dcgan]\n", "must be >= 0"),
    ("[metrics]\nnames = ['fidd']\n[budget]\nsteps=1\n[models.dcgan]\n", "Unknown metric"),
    ("[metrics]\nextractors = ['lenet']\n[budget]\nsteps=1\n[models.dcgan]\n", "Unknown extractor 'lenet'"),
    ("[metrics]\nreference = 'val'\n[budget]\nsteps=1\n[models.dcgan]\n",
     r"\[metrics\]: reference split 'val' does not exist for dataset 'mnist'; its splits are train, test"),
    ("[metrics]\ndtype = 'fp64'\n[budget]\nsteps=1\n[models.dcgan]\n", r"\[metrics\]: Unknown dtype 'fp64'; choose one of fp32"),
    ("[budget]\nsteps = 1\nbatch_size = 60001\n[models.dcgan]\n",
     r"\[models.dcgan\]: budget batch_size 60001 is larger than the 60000 training images of 'mnist'"),
    ("seeds = [0, 1, 0]\n[budget]\nsteps=1\n[models.dcgan]\n", "seeds \\[0, 1, 0\\] name 0 more than once"),
    ("datasets = ['mnist', 'fashion-mnist', 'mnist']\n[budget]\nsteps=1\n[models.dcgan]\n", "name mnist more than once"),
    ("[budget]\nsteps = 1\nbatch_size = 4\n[models.wgan-gp]\n",
     r"\[models.wgan-gp\]: budget batch_size 4 is smaller than n_critic=5"),
    ("[models.real-data]\nn_images = 60001\n", r"\[models.real-data\]: n_images=60001 is more than the 60000 training"),
    ("[models.pca-gaussian]\nn_components = 785\n", r"\[models.pca-gaussian\]: n_components must be in \[1, 784\]"),
])
def test_suite_mistakes_are_caught_at_load(text, message):
    with pytest.raises(GmbenchError, match=message):
        parse_suite(text, "t")


def test_repeated_seeds_from_the_command_line_are_refused():
    with pytest.raises(GmbenchError, match="the same job would run twice"):
        parse(seeds=[0, 0])


def test_batch_size_is_not_checked_for_untrained_models():
    assert parse_suite("[budget]\nbatch_size = 70000\n[models.pca-gaussian]\n", "t").jobs()


def test_scored_metrics_cover_variants_and_curves():
    suite = parse_suite("[metrics]\nextractors = ['mnist-lenet', 'inception-v3-tf']\nnames = ['fid']\n"
                        "[curve]\nevery_steps = 5\nmetric = 'kid'\n[budget]\nsteps = 5\n[models.ddpm]\n"
                        "variants = [{ sample_steps = 10, metrics = ['is'] }, { sample_steps = 20, metrics = [] }]\n"
                        "[models.pca-gaussian]\n", "t")
    assert suite.scored_metrics() == {"mnist-lenet": {"fid", "is", "kid"}, "inception-v3-tf": {"fid", "is"}}


def test_reference_models_need_no_budget():
    assert parse_suite("[models.pca-gaussian]\n", "t").models[0].budget == Budget()


def test_suite_path_resolution(tmp_path):
    assert builtin_suites() == ["quick", "smoke", "smoke-rgb", "standard"]
    assert resolve_suite_path("smoke").name == "smoke.toml" and suite_name("smoke") == "smoke"
    (tmp_path / "mine.toml").write_text(resolve_suite_path("smoke").read_text())
    assert suite_name(str(tmp_path / "mine.toml")) == "mine" and load_suite(str(tmp_path / "mine.toml")).name == "mine"
    with pytest.raises(GmbenchError, match="does not exist"):
        resolve_suite_path(str(tmp_path / "x.toml"))
