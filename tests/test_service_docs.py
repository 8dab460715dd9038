"""/docs works offline: the page references no URL outside the server, Swagger UI's files
ship with the package and are served with their content types, and (with chromium) the
page renders every operation with all outside requests blocked."""

import hashlib
import re
import shutil
import subprocess
import sys
from importlib.resources import files
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402

from recsys import FunkSVD  # noqa: E402
from recsys.models.registry import save  # noqa: E402
from recsys.serving.app import create_app  # noqa: E402
from recsys.serving.docs_assets import ASSETS, PREFIX  # noqa: E402
from recsys.serving.settings import Settings  # noqa: E402

SHIPPED = files("recsys.serving").joinpath("static", "swagger")
SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "check_docs_offline.py"


@pytest.fixture(scope="module")
def client(tmp_path_factory, small_ratings):
    path = tmp_path_factory.mktemp("docs") / "model.npz"
    save(FunkSVD(n_factors=4, n_epochs=5, seed=1).fit(small_ratings), path)
    with TestClient(create_app(path, Settings(admin_token=None))) as c:
        yield c


def test_the_docs_page_references_no_outside_url(client):
    r = client.get("/docs")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert not re.search(r"(?i)https?:|//[a-z0-9]", r.text), r.text
    for name in ASSETS:
        assert f'"{PREFIX}{name}"' in r.text
    assert '"validatorUrl": null' in r.text  # no badge fetched from the online validator
    assert client.get("/openapi.json").status_code == 200


def test_the_docs_page_follows_a_path_prefix(client):
    prefixed = TestClient(client.app, root_path="/api")
    text = prefixed.get("/docs").text
    assert f'"/api{PREFIX}swagger-ui-bundle.js"' in text and "'/api/openapi.json'" in text


@pytest.mark.parametrize("name", sorted(ASSETS))
def test_each_asset_is_served_with_its_content_type(client, name):
    r = client.get(PREFIX + name)
    assert r.status_code == 200
    assert r.headers["content-type"] == ASSETS[name]
    assert r.content == SHIPPED.joinpath(name).read_bytes() and len(r.content) > 500


def test_the_package_ships_the_assets_with_their_licence_and_version():
    names = {p.name for p in SHIPPED.iterdir()}
    assert set(ASSETS) | {"LICENSE", "NOTICE", "README.md"} <= names
    assert "Apache License" in SHIPPED.joinpath("LICENSE").read_text()
    readme = SHIPPED.joinpath("README.md").read_text()
    assert re.search(r"swagger-ui-dist.*\*\*5\.\d+\.\d+\*\*", readme)
    for name in ASSETS:  # the checksums written down are those of the files shipped
        digest = hashlib.sha256(SHIPPED.joinpath(name).read_bytes()).hexdigest()
        assert f"| {name} | {digest} |" in readme
    assert SHIPPED.joinpath("swagger-ui-bundle.js").read_bytes().startswith(b"/*!")
    assert SHIPPED.joinpath("favicon-32x32.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_redoc_is_not_served_and_unknown_assets_are_a_json_404(client):
    for path in ("/redoc", PREFIX + "swagger-ui.js", PREFIX + "../app.py"):
        r = client.get(path)
        assert r.status_code == 404 and r.json()["error"] == "not_found"


@pytest.mark.skipif(shutil.which("chromium") is None,
                    reason="chromium is not installed (apt-get install chromium)")
def test_headless_chromium_renders_every_operation_with_no_network():
    run = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    found = re.search(r"(\d+) of (\d+) operations rendered", run.stdout)
    assert found and found.group(1) == found.group(2) and int(found.group(2)) >= 9
