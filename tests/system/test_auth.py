"""Auth service: the original's contract, plus pinned JWTs, revocation and throttling."""
import time
import uuid

import pytest

from conftest import Api, StoredUsers, auth
import jwt_util


def test_register_returns_contract_body(api: Api):
    r = api.post("/register", json={"email": f"{uuid.uuid4().hex[:8]}@example.com", "username": "test",
                                    "password": "12345678"})
    assert r.status_code == 200
    assert r.json() == {"message": "Registration successful"}
    assert r.headers["Content-Type"].startswith("application/json")


def test_register_duplicate_email_is_case_insensitive(api: Api):
    email, _, _ = api.register()
    r = api.post("/register", json={"email": email.upper(), "username": "other", "password": "secret123"})
    assert r.status_code == 400
    assert r.json() == {"error": "Email already registered."}


@pytest.mark.parametrize("body,detail", [
    ({"email": "not-an-email", "username": "ab", "password": "secret1"}, "email"),
    ({"email": "a@example.com", "username": "a", "password": "secret1"}, "username"),
    ({"email": "a@example.com", "username": "x" * 101, "password": "secret1"}, "username"),
    ({"email": "a@example.com", "username": "ab", "password": "12345"}, "password"),
    ({"username": "ab", "password": "secret1"}, "email"),
    ({"email": {"$ne": None}, "username": "ab", "password": "secret1"}, "email"),
    ({"email": "a@example.com", "username": 12, "password": "secret1"}, "username"),
    ({"email": "a@example.com", "username": "ab", "password": ["secret1"]}, "password"),
])
def test_register_rejects_invalid_input(api: Api, body, detail):
    r = api.post("/register", json=body)
    assert r.status_code == 400
    assert r.json()["error"] == "Invalid input"
    assert detail in r.json()["detail"]


def test_register_email_lengths_count_characters(api: Api):
    """The schema's email rule (1-64 characters before the @, at most 254 in all) counts
    characters, as JSON Schema does, not UTF-8 bytes."""
    local = "\u00e9" * 64  # 128 bytes
    r = api.post("/register", json={"email": f"{local}@example.com", "username": "ab", "password": "secret1"})
    assert r.status_code == 200, r.text
    domain = "\u00e9" * 60 + "." + "x" * 60 + ".io"
    email = "u" + uuid.uuid4().hex[:8] + "@" + "\u00e9" * (254 - 10 - len(domain) - 1) + "." + domain
    assert len(email) == 254 and len(email.encode()) > 254
    r = api.post("/register", json={"email": email, "username": "ab", "password": "secret1"})
    assert r.status_code == 200, r.text
    r = api.post("/register", json={"email": "\u00e9" * 65 + "@example.com", "username": "ab", "password": "secret1"})
    assert r.status_code == 400 and r.json()["error"] == "Invalid input"
    r = api.post("/register", json={"email": "a" + email, "username": "ab", "password": "secret1"})
    assert r.status_code == 400 and r.json()["error"] == "Invalid input"


def test_login_returns_token_and_cookie(api: Api):
    email, username, password = api.register()
    r = api.post("/login", json={"email": email, "password": password})
    assert r.status_code == 200
    token = r.json()["token"]
    assert list(r.json()) == ["token"]
    cookie = r.headers["Set-Cookie"]
    assert cookie.startswith(f"token={token}; Path=/; Max-Age=86400; HttpOnly")
    assert jwt_util.header(token) == {"alg": "HS256", "typ": "JWT"}
    c = jwt_util.claims(token)
    for claim in ("user_id", "email", "username", "role", "jti", "exp", "iat", "nbf", "sub", "iss", "aud"):
        assert claim in c, claim
    assert len(c["user_id"]) == 24 and int(c["user_id"], 16) >= 0
    assert c["sub"] == c["user_id"]
    assert c["email"] == email and c["username"] == username and c["role"] == "user"
    assert 86400 - 5 <= c["exp"] - time.time() <= 86400 + 5


def test_login_email_is_case_insensitive(api: Api):
    email, _, password = api.register()
    assert api.post("/login", json={"email": email.upper(), "password": password}).status_code == 200


def test_login_wrong_password_and_unknown_user_are_alike(api: Api):
    email, _, _ = api.register()
    wrong = api.post("/login", json={"email": email, "password": "wrong-password"})
    unknown = api.post("/login", json={"email": "nobody-" + email, "password": "wrong-password"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json() == {"error": "Invalid email or password"}


def test_login_bad_input(api: Api):
    assert api.post("/login", json={"email": "x@example.com"}).status_code == 400
    assert api.post("/login", json={"email": {"$gt": ""}, "password": "x"}).json()["error"] == "Invalid input"


def test_cookie_and_bearer_both_authenticate(api: Api):
    token, me = api.new_user()
    assert api.get("/users/me", headers=auth(token)).status_code == 200
    r = api.get("/users/me", cookies={"token": token})
    assert r.status_code == 200 and r.json()["id"] == me["id"]


def test_change_password(api: Api):
    email, _, password = api.register()
    token = api.login(email, password)
    r = api.post("/change-password", cookies={"token": token},
                 json={"old_password": password, "new_password": "brand-new-pw"})
    assert r.status_code == 200
    assert r.json() == {"message": "Password changed successfully"}
    assert api.post("/login", json={"email": email, "password": password}).status_code == 401
    assert api.post("/login", json={"email": email, "password": "brand-new-pw"}).status_code == 200


def test_change_password_errors(api: Api):
    email, _, password = api.register()
    token = api.login(email, password)
    r = api.post("/change-password", json={"old_password": password, "new_password": "another1"})
    assert r.status_code == 401 and r.json() == {"error": "Unauthorized"}
    r = api.post("/change-password", headers=auth(token), json={"old_password": "nope-nope", "new_password": "another1"})
    assert r.status_code == 400 and "incorrect" in r.json()["error"]
    r = api.post("/change-password", headers=auth(token), json={"old_password": password, "new_password": "123"})
    assert r.status_code == 400 and r.json()["error"] == "Invalid input"


def test_logout_clears_cookie_and_revokes_token(api: Api):
    token, _ = api.new_user()
    r = api.post("/logout", cookies={"token": token})
    assert r.status_code == 200
    assert r.json() == {"message": "Logged out successfully"}
    assert "token=;" in r.headers["Set-Cookie"] and "Max-Age=0" in r.headers["Set-Cookie"]
    # The token itself is dead, not only the cookie.
    assert api.get("/users/me", headers=auth(token)).status_code == 401
    assert api.post("/logout").status_code == 200, "logout without a token is harmless"


def test_forged_tokens_are_rejected(api: Api):
    token, _ = api.new_user()
    good = jwt_util.claims(token)
    for forged in (
        jwt_util.forge({"alg": "none", "typ": "JWT"}, good, None),
        jwt_util.forge({"alg": "HS256", "typ": "JWT"}, good, b"not-the-secret"),
        jwt_util.forge({"alg": "HS512", "typ": "JWT"}, good, b"not-the-secret"),
        token[:-2] + ("AA" if token[-2:] != "AA" else "BB"),
        token.split(".")[0] + "." + jwt_util.b64url(b'{"user_id":"' + b"0" * 24 + b'"}') + "." + token.split(".")[2],
        "garbage",
        "",
    ):
        r = api.get("/users/me", headers=auth(forged))
        assert r.status_code == 401, forged
        assert r.json() == {"error": "Unauthorized"}


def test_failed_logins_are_throttled_per_account(api: Api):
    email, _, password = api.register()
    for _ in range(5):
        assert api.post("/login", json={"email": email, "password": "wrong-pass"}).status_code == 401
    r = api.post("/login", json={"email": email, "password": password})
    assert r.status_code == 429
    assert int(r.headers["Retry-After"]) > 0
    assert r.json()["retry_after_s"] == int(r.headers["Retry-After"])
    # Another account from the same address is unaffected.
    other, _, pw = api.register()
    assert api.post("/login", json={"email": other, "password": pw}).status_code == 200


def test_failed_logins_are_throttled_per_address(start_server):
    s = start_server({"CHATORBIT_LOGIN_IP_MAX_FAILURES": "3", "CHATORBIT_LOGIN_MAX_FAILURES": "100"})
    api = Api(s)
    for i in range(3):
        assert api.post("/login", json={"email": f"x{i}@example.com", "password": "wrong-pass"}).status_code == 401
    r = api.post("/login", json={"email": "fresh@example.com", "password": "wrong-pass"})
    assert r.status_code == 429 and "Retry-After" in r.headers


def test_admin_emails_get_admin_role(api: Api):
    email, _, password = api.register(email="Admin@Example.com")
    token = api.login(email, password)
    assert jwt_util.claims(token)["role"] == "admin"
    assert api.get("/users/me", headers=auth(token)).json()["role"] == "admin"


def test_bcrypt_hash_from_the_original_verifies_and_is_upgraded(start_server, tmp_path):
    s = start_server(data_dir=str(tmp_path))
    api = Api(s)
    email, _, _ = api.register(password="placeholder1")
    # What the original stored: a Go bcrypt $2a$ cost-10 hash (the unit tests' vector).
    from test_vectors import GO_BCRYPT_HASH, GO_BCRYPT_PASSWORD
    users = StoredUsers(s)
    users.set_password_hash(email, GO_BCRYPT_HASH)
    assert api.post("/login", json={"email": email, "password": "wrong-password"}).status_code == 401
    assert api.post("/login", json={"email": email, "password": GO_BCRYPT_PASSWORD}).status_code == 200
    stored = users.password_hash(email)
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$"), stored
    assert api.post("/login", json={"email": email, "password": GO_BCRYPT_PASSWORD}).status_code == 200


def test_new_hashes_are_argon2id(start_server, tmp_path):
    s = start_server(data_dir=str(tmp_path))
    email, _, _ = Api(s).register()
    assert StoredUsers(s).password_hash(email).startswith("$argon2id$v=19$m=19456,t=2,p=1$")
