"""Property-based requests generated from the service's own OpenAPI schema: no 5xx, ever.

Bounded (a few examples per operation, no shrinking of passing runs) so it takes seconds.
"""

import pytest

schemathesis = pytest.importorskip("schemathesis")
pytest.importorskip("fastapi")

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402

from recsys import FunkSVD  # noqa: E402
from recsys.models.registry import save  # noqa: E402
from recsys.serving.app import create_app  # noqa: E402
from recsys.serving.settings import Settings  # noqa: E402


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory, small_ratings):
    path = tmp_path_factory.mktemp("schema") / "model.npz"
    save(FunkSVD(n_factors=4, n_epochs=3, seed=0).fit(small_ratings), path)
    app = create_app(path, Settings(max_n=100, max_batch=50, max_body_bytes=20_000,
                                    admin_token="t0ken"))
    return schemathesis.openapi.from_asgi("/openapi.json", app)


@pytest.mark.parametrize("mode, known_ids", [
    (GenerationMode.POSITIVE, False),
    (GenerationMode.NEGATIVE, False),
    (GenerationMode.POSITIVE, True),  # ids the model has, so requests reach the model
])
def test_no_server_errors(api_schema, mode, known_ids):
    fixed = {"user": "7", "item": "3"} if known_ids else None
    strategy = api_schema.as_strategy(generation_mode=mode, path_parameters=fixed)

    @given(data=st.data())
    @settings(max_examples=60, deadline=None, phases=[Phase.generate, Phase.shrink],
              suppress_health_check=list(HealthCheck), database=None, derandomize=True)
    def run(data):
        case = data.draw(strategy)
        case.call_and_validate(checks=[not_a_server_error])

    run()
