"""`recsys serve` options from RECSYS_SERVE_* environment variables: each reaches the
server, the command line wins, and a bad value is an error naming the variable.

The server itself is not started: uvicorn.run and run_workers are replaced by recorders
of what they were given."""

import os

import click
import pytest
from click.testing import CliRunner

from recsys import FunkSVD
from recsys.cli import main
from recsys.models.registry import save

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")


@pytest.fixture(scope="module")
def model_file(tmp_path_factory, small_ratings):
    path = tmp_path_factory.mktemp("cli_env") / "model.npz"
    save(FunkSVD(n_factors=4, n_epochs=5, seed=3).fit(small_ratings), path)
    return path


@pytest.fixture()
def started(monkeypatch):
    """What the command would have started: {"settings", "options", "workers", "model"}."""
    import uvicorn

    import recsys.serving.workers as workers

    seen = {}

    def run(app, **options):
        seen.update(settings=app.state.settings, options=options, workers=1,
                    model=str(app.state.holder.path))

    def run_workers(model_path, settings, n, **options):
        seen.update(settings=settings, options=options, workers=n, model=str(model_path))

    monkeypatch.setattr(uvicorn, "run", run)
    monkeypatch.setattr(workers, "run_workers", run_workers)
    saved = dict(os.environ)  # serve sets thread counts for the processes it starts
    yield seen
    os.environ.clear()
    os.environ.update(saved)


def _serve(args, env):
    return CliRunner().invoke(main, ["serve", *args], env=env)


def test_every_option_comes_from_its_variable(model_file, started, tmp_path):
    env = {"RECSYS_SERVE_MODEL": str(model_file), "RECSYS_SERVE_HOST": "0.0.0.0",
           "RECSYS_SERVE_PORT": "8123", "RECSYS_SERVE_MAX_N": "77",
           "RECSYS_SERVE_MAX_BATCH": "55", "RECSYS_SERVE_MAX_BODY": "4096",
           "RECSYS_SERVE_CACHE_TOP": "0", "RECSYS_SERVE_FAST_PATH": "false",
           "RECSYS_SERVE_RATINGS_LOG": str(tmp_path / "ratings.log"),
           "RECSYS_SERVE_ACCESS_LOG": "true"}
    result = _serve([], env)
    assert result.exit_code == 0, result.output
    s = started["settings"]
    assert (s.max_n, s.max_batch, s.max_body_bytes, s.cache_top, s.fast_path) == \
        (77, 55, 4096, 0, False)
    assert s.ratings_log == str((tmp_path / "ratings.log").resolve())
    assert started["options"]["host"] == "0.0.0.0" and started["options"]["port"] == 8123
    assert started["options"]["access_log"] is True
    assert started["model"] == str(model_file) and started["workers"] == 1
    result = _serve([], {"RECSYS_SERVE_MODEL": str(model_file), "RECSYS_SERVE_WORKERS": "3"})
    assert result.exit_code == 0, result.output
    assert started["workers"] == 3


def test_the_command_line_wins(model_file, started, tmp_path):
    env = {"RECSYS_SERVE_MODEL": str(tmp_path / "other.npz"), "RECSYS_SERVE_PORT": "8123",
           "RECSYS_SERVE_MAX_N": "77", "RECSYS_SERVE_FAST_PATH": "false",
           "RECSYS_SERVE_ACCESS_LOG": "1"}
    result = _serve([str(model_file), "--port", "9001", "--max-n", "12", "--fast-path",
                     "--no-access-log"], env)
    assert result.exit_code == 0, result.output
    assert started["model"] == str(model_file)
    assert started["options"]["port"] == 9001 and started["options"]["access_log"] is False
    assert started["settings"].max_n == 12 and started["settings"].fast_path is True


def test_without_variables_the_defaults_hold(model_file, started):
    result = _serve([str(model_file)], {})
    assert result.exit_code == 0, result.output
    s = started["settings"]
    assert (s.max_n, s.max_batch, s.max_body_bytes, s.cache_top, s.fast_path) == \
        (1000, 10_000, 1 << 20, 100, True)
    assert started["options"]["port"] == 8000 and started["options"]["access_log"] is False


@pytest.mark.parametrize("name, value, words", [
    ("RECSYS_SERVE_PORT", "eighty", "'eighty' is not a valid integer"),
    ("RECSYS_SERVE_PORT", "70000", "70000 is not in the range"),
    ("RECSYS_SERVE_WORKERS", "0", "0 is not in the range"),
    ("RECSYS_SERVE_MAX_BODY", "1MB", "'1MB' is not a valid integer"),
    ("RECSYS_SERVE_FAST_PATH", "maybe", "'maybe' is not a valid boolean"),
    ("RECSYS_SERVE_ACCESS_LOG", "sometimes", "'sometimes' is not a valid boolean"),
])
def test_a_bad_value_names_the_variable(model_file, started, name, value, words):
    result = _serve([str(model_file)], {name: value})
    assert result.exit_code == 2 and not started
    assert f"(env var: '{name}')" in result.output and words in result.output


def test_a_missing_model_file_from_the_environment_is_named(started, tmp_path):
    result = _serve([], {"RECSYS_SERVE_MODEL": str(tmp_path / "nope.npz")})
    assert result.exit_code == 2 and "nope.npz" in result.output and not started


def test_help_shows_every_variable():
    from recsys.cli.serve import serve

    text = " ".join(CliRunner().invoke(main, ["serve", "--help"]).output.split())
    for param in serve.params:
        if isinstance(param, click.Option) and param.name != "help":
            assert param.envvar == "RECSYS_SERVE_" + param.name.upper()
            assert f"env var: {param.envvar}" in text
    for name in ("RECSYS_SERVE_MODEL", "RECSYS_ADMIN_TOKEN", "RECSYS_RATINGS_TOKEN"):
        assert name in text
