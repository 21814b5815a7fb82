"""User service: the original's public profile, plus /users/me and admin role changes."""
import pytest

from conftest import Api, auth


def test_get_user_contract_body(api: Api):
    token, me = api.new_user(username="alice-profile")
    r = api.get(f"/user/{me['id']}")
    assert r.status_code == 200
    assert r.json() == {"id": me["id"], "name": "alice-profile", "email": me["email"]}


def test_get_user_accepts_upper_case_hex(api: Api):
    _, me = api.new_user()
    assert api.get(f"/user/{me['id'].upper()}").json()["id"] == me["id"]


@pytest.mark.parametrize("user_id", ["000000000000000000000000", "not-an-id", "123", "zzzzzzzzzzzzzzzzzzzzzzzz",
                                     "%27%20OR%201%3D1", "a" * 25])
def test_get_user_unknown_or_malformed_is_404(api: Api, user_id):
    r = api.get(f"/user/{user_id}")
    assert r.status_code == 404
    assert r.json() == {"error": "user not found"}


def test_me_requires_auth(api: Api):
    r = api.get("/users/me")
    assert r.status_code == 401 and r.json() == {"error": "Unauthorized"}


def test_me_profile(api: Api):
    token, me = api.new_user(username="bob-me")
    assert me["username"] == me["name"] == "bob-me"
    assert me["role"] == "user"
    assert me["created_at"].endswith("Z")


def test_role_change_by_admin(api: Api):
    admin_token, _ = api.new_user(email="admin@example.com")
    user_token, user = api.new_user()
    r = api.put(f"/users/{user['id']}/role", headers=auth(admin_token), json={"role": "moderator"})
    assert r.status_code == 200 and r.json() == {"id": user["id"], "role": "moderator"}
    assert api.get("/users/me", headers=auth(user_token)).json()["role"] == "moderator"


def test_role_change_refused_to_others(api: Api):
    user_token, user = api.new_user()
    other_token, other = api.new_user()
    r = api.put(f"/users/{other['id']}/role", headers=auth(user_token), json={"role": "admin"})
    assert r.status_code == 403 and "error" in r.json()
    r = api.put(f"/users/{other['id']}/role", json={"role": "admin"})
    assert r.status_code == 401


def test_role_change_bad_input(api: Api):
    admin_token = api.login("admin@example.com")
    _, user = api.new_user()
    r = api.put(f"/users/{user['id']}/role", headers=auth(admin_token), json={"role": "overlord"})
    assert r.status_code == 400 and r.json()["error"] == "Invalid input"
    r = api.put(f"/users/{user['id']}/role", headers=auth(admin_token), json={"role": ["admin"]})
    assert r.status_code == 400
    r = api.put("/users/ffffffffffffffffffffffff/role", headers=auth(admin_token), json={"role": "user"})
    assert r.status_code == 404
