"""API documentation: the OpenAPI document and Swagger UI are served and true."""
import re

from conftest import Api


def test_doc_json_is_openapi3(api: Api):
    r = api.get("/swagger/doc.json")
    assert r.status_code == 200
    doc = r.json()
    assert doc["openapi"].startswith("3.")
    assert "/register" in doc["paths"] and "/user/{id}" in doc["paths"]


def test_every_documented_route_exists(api: Api):
    doc = api.get("/swagger/doc.json").json()
    for path, ops in doc["paths"].items():
        concrete = re.sub(r"\{[^}]+\}", "swagger-ui.css" if path.startswith("/swagger/") else "x", path)
        for method in ops:
            r = api.http.request(method.upper(), api.url(concrete), timeout=5, allow_redirects=False)
            assert r.status_code not in (404, 405) or r.json().get("error") not in ("not found", "method not allowed"), \
                f"{method.upper()} {path} is documented but not routed"


def test_swagger_ui_is_served(api: Api):
    r = api.get("/swagger/index.html")
    assert r.status_code == 200 and "swagger-ui-bundle.js" in r.text
    js = api.get("/swagger/swagger-ui-bundle.js")
    assert js.status_code == 200 and len(js.content) > 100_000
    assert api.get("/swagger/swagger-ui.css").status_code == 200
    assert api.get("/swagger/..%2Fchatorbit").status_code == 404
    assert api.get("/swagger", allow_redirects=False).headers["Location"] == "/swagger/index.html"
