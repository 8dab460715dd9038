"""/docs without the network: Swagger UI served from files shipped in the package.

FastAPI's own /docs page loads Swagger UI's script and style sheet from a CDN, so it is
blank where the server has no way out (or the browser none in). ``add_docs`` serves the
page with local URLs instead, and the files of ``swagger-ui-dist`` (the version is in
``static/swagger/README.md``) from ``recsys/serving/static/swagger`` by
``importlib.resources``; the online validator badge is off, so the page makes no request
outside the server. ReDoc is not served.
"""

from functools import cache
from importlib.resources import files

from fastapi import Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import Response

PREFIX = "/docs/assets/"
#: the shipped files and their content types
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
}


@cache
def asset(name: str) -> bytes:
    """The bytes of a shipped file (read once)."""
    return files("recsys.serving").joinpath("static", "swagger", name).read_bytes()


def add_docs(app, title: str) -> None:
    """Routes of GET /docs and of its assets (not in the OpenAPI schema)."""

    @app.get("/docs", include_in_schema=False)
    async def docs(request: Request):
        root = request.scope.get("root_path", "").rstrip("/")  # behind a path prefix
        return get_swagger_ui_html(
            openapi_url=root + app.openapi_url, title=f"{title} - API docs",
            swagger_js_url=root + PREFIX + "swagger-ui-bundle.js",
            swagger_css_url=root + PREFIX + "swagger-ui.css",
            swagger_favicon_url=root + PREFIX + "favicon-32x32.png",
            swagger_ui_parameters={"validatorUrl": None})

    for name, media_type in ASSETS.items():
        app.add_api_route(PREFIX + name, _serve(name, media_type), methods=["GET"],
                          include_in_schema=False)


def _serve(name: str, media_type: str):
    async def serve_asset():
        return Response(asset(name), media_type=media_type,
                        headers={"cache-control": "public, max-age=86400"})

    serve_asset.__name__ = "asset_" + name.replace("-", "_").replace(".", "_")
    return serve_asset
