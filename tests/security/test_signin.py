"""The pages' sign-in: no login CSRF from other sites, a Secure cookie over HTTPS."""

from __future__ import annotations

from tests.conftest import Api


def test_sign_in_and_out_are_refused_when_posted_from_another_site(api: Api) -> None:
    token = api.token(["clerk"], ["10"])
    for headers in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"},
                    {"Origin": "null"}):  # fmt: skip
        r = api.client.post("/signin", data={"token": token}, headers=headers,
                            follow_redirects=False)  # fmt: skip
        assert r.status_code == 403, headers
        assert "set-cookie" not in r.headers
        r = api.client.post("/signout", headers=headers, follow_redirects=False)
        assert r.status_code == 403, headers

    for headers in ({}, {"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"}):
        r = api.client.post("/signin", data={"token": token}, headers=headers,
                            follow_redirects=False)  # fmt: skip
        assert r.status_code == 303 and "eakte_session=" in r.headers["set-cookie"], headers
        cookie = r.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        assert "secure" not in cookie  # plain HTTP here (a development setup)


def test_the_session_cookie_is_secure_over_https(api: Api) -> None:
    r = api.client.post("https://testserver/signin", data={"token": api.token(["clerk"], ["10"])},
                        follow_redirects=False)  # fmt: skip
    assert r.status_code == 303
    assert "; secure" in r.headers["set-cookie"].lower()
