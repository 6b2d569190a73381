"""What `lookalike serve` checks and generates for safety, without starting a server: the admin
password on an address other machines reach, and the nginx configuration's headers, client address
and request limits (survey/web/proxy_security.py). Served behaviour: tests/test_sign_in_served.py."""

from __future__ import annotations

import re

import pytest

from db.pgserver import free_port
from survey.cli import main
from survey.cli import study as study_cli
from survey.settings import Settings, SettingsError
from survey.web import proxy_security, serving
from tests.served import needs_nginx, nginx_accepts


@pytest.fixture
def no_exec(monkeypatch, tmp_path):
    """`lookalike serve` stops where it would start Streamlit; no secrets files of the machine count."""
    started = []
    monkeypatch.setattr(study_cli.os, "execve", lambda *a: started.append(a) or (_ for _ in ()).throw(SystemExit(0)))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    return started


@pytest.mark.parametrize("address", ["0.0.0.0", "192.0.2.10", "::", "survey.example.org"])
def test_serve_on_a_reachable_address_refuses_a_short_password(address, no_exec, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LOOKALIKE_ADMIN_PASSWORD", "eleven char")
    assert main(["serve", "--db", str(tmp_path / "s.db"), "--address", address, "--port", str(free_port())]) == 2
    err = capsys.readouterr().err
    assert "LOOKALIKE_ADMIN_PASSWORD has 11 characters" in err and "at least 12" in err and len(err.splitlines()) == 1
    assert no_exec == []


def test_a_short_password_in_streamlit_secrets_is_named_too(no_exec, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("LOOKALIKE_ADMIN_PASSWORD", raising=False)
    (tmp_path / ".streamlit").mkdir()
    (tmp_path / ".streamlit" / "secrets.toml").write_text('admin_password = "short"\n')
    assert main(["serve", "--db", str(tmp_path / "s.db"), "--address", "0.0.0.0"]) == 2
    assert f"admin_password in {tmp_path / '.streamlit' / 'secrets.toml'} has 5 characters" in capsys.readouterr().err


def test_serve_warns_without_a_password_and_accepts_a_long_one_or_loopback(no_exec, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("LOOKALIKE_ADMIN_PASSWORD", raising=False)
    with pytest.raises(SystemExit):
        main(["serve", "--db", str(tmp_path / "s.db"), "--address", "0.0.0.0"])
    assert "warning: no admin password is set, so /admin is disabled" in capsys.readouterr().err
    monkeypatch.setenv("LOOKALIKE_ADMIN_PASSWORD", "twelve chars")
    with pytest.raises(SystemExit):
        main(["serve", "--db", str(tmp_path / "s.db"), "--address", "0.0.0.0"])
    monkeypatch.setenv("LOOKALIKE_ADMIN_PASSWORD", "pw")  # this machine only: a short one is the user's call
    for address in ("localhost", "127.0.0.1", "::1"):
        with pytest.raises(SystemExit):
            main(["serve", "--db", str(tmp_path / "s.db"), "--address", address])
    assert len(no_exec) == 5 and "warning" not in capsys.readouterr().err


def test_trusted_proxies_are_checked_and_passed_on(tmp_path):
    s = Settings.from_env(environ={"LOOKALIKE_TRUSTED_PROXIES": "127.0.0.1, 10.0.0.0/8"})
    assert s.trusted_proxies == ("127.0.0.1/32", "10.0.0.0/8")
    assert Settings.from_env(environ=s.to_env()) == s
    with pytest.raises(SettingsError, match="LOOKALIKE_TRUSTED_PROXIES: 'proxy.local' is not an address or network"):
        Settings.from_env(environ={"LOOKALIKE_TRUSTED_PROXIES": "proxy.local"})


def _locations(text: str) -> dict[str, str]:
    return dict(re.findall(r"location ([^{]+?) \{(.*?)\n        \}", text, flags=re.S))


@needs_nginx
def test_the_nginx_configuration_sends_security_headers_and_limits_the_sign_in_paths(tmp_path):
    text = serving.nginx_config(tmp_path, listen="127.0.0.1:18080", backends=[18081], trusted_proxies=("10.0.0.0/8",))
    nginx_accepts(text, tmp_path)
    locations = _locations(text)
    assert set(locations) == {"/static/", "/", "~ ^/admin/?$", "= /_stcore/stream"}
    csp = proxy_security.content_security_policy(serving.streamlit_static().parent / "index.html")
    for body in locations.values():  # every location: nginx drops the server's add_header where a location has one
        assert f'add_header Content-Security-Policy "{csp}" always;' in body
        assert 'add_header X-Frame-Options "DENY" always;' in body
        assert 'add_header Referrer-Policy "no-referrer" always;' in body
        assert 'add_header X-Content-Type-Options "nosniff" always;' in body
    assert "frame-ancestors 'none'" in csp and "'unsafe-eval'" not in csp  # WebAssembly only, never JS eval
    assert "script-src 'self' 'wasm-unsafe-eval' 'sha256-" in csp
    assert "limit_req zone=lookalike_admin" in locations["~ ^/admin/?$"]
    assert "limit_req zone=lookalike_stream" in locations["= /_stcore/stream"]
    # the client's address is nginx's own finding, never what a client wrote in X-Forwarded-For
    assert "$proxy_add_x_forwarded_for" not in text
    for name in ("/", "~ ^/admin/?$", "= /_stcore/stream"):
        assert "proxy_set_header X-Real-IP $remote_addr;" in locations[name]
        assert "proxy_set_header X-Forwarded-For $remote_addr;" in locations[name]
    assert "set_real_ip_from 10.0.0.0/8;" in text and "real_ip_recursive on;" in text
    plain = serving.nginx_config(tmp_path, listen="127.0.0.1:18080", backends=[18081])
    assert "set_real_ip_from" not in plain  # no proxy of your own: nginx's peer is the client


def test_the_policy_allows_exactly_the_inline_script_of_streamlits_page(tmp_path):
    page = tmp_path / "index.html"
    page.write_text("<html><script>\n      window.prerenderReady = false\n    </script><script src=x></script></html>")
    # the hash of the script's text, as a browser computes it (openssl dgst -sha256 -binary | base64)
    assert proxy_security.inline_script_hashes(page) == ["'sha256-THxz9J9+wf7rhwR2YkXJoSZ13UCmYyC+3lNDv2+8ugA='"]
