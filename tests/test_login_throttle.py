"""Sign-in throttling (django-axes): per account, per client address, on the site's and the admin's login."""

from __future__ import annotations

from axes.models import AccessAttempt
from django.contrib.auth.models import User
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.test import RequestFactory, TestCase, override_settings

from dashboard.client_address import client_ip
from tests.personas import FAST_HASHERS, PASSWORD, make_personas

WRONG = "not-the-password-at-all"


@override_settings(REDIS_URL="", PASSWORD_HASHERS=FAST_HASHERS)
class LoginThrottleTests(TestCase):
    """Failures lock an account, or an address, for the cool-off; successes clear their own account."""

    @classmethod
    def setUpTestData(cls):
        cls.p = make_personas()

    def attempt(self, username: str, password: str, ip: str = "198.51.100.1", url: str = "/login/", **headers):
        return self.client.post(url, {"username": username, "password": password}, REMOTE_ADDR=ip, **headers)

    @property
    def limit(self) -> int:
        from django.conf import settings

        return settings.AXES_FAILURE_LIMIT

    def test_the_default_limit_is_five_failures_for_fifteen_minutes(self):
        from django.conf import settings

        assert (settings.AXES_FAILURE_LIMIT, settings.AXES_COOLOFF_TIME * 60) == (5, 15)

    def test_it_locks_an_account_after_the_limit_whatever_the_address(self):
        for n in range(self.limit - 1):
            assert self.attempt("sue", WRONG, ip=f"198.51.100.{n + 1}").status_code == 200
        response = self.attempt("sue", WRONG, ip="198.51.100.99")
        assert response.status_code == 429
        # Even the right password, from an address never seen before, waits for the cool-off.
        assert self.attempt("sue", PASSWORD, ip="203.0.113.7").status_code == 429
        # Other accounts are not affected.
        assert self.attempt("otto", PASSWORD, ip="203.0.113.7").status_code == 302

    def test_it_locks_an_address_that_tries_many_accounts(self):
        for n in range(self.limit):
            self.attempt(f"guess{n}", WRONG, ip="198.51.100.5")
        assert self.attempt("sue", PASSWORD, ip="198.51.100.5").status_code == 429
        assert self.attempt("sue", PASSWORD, ip="198.51.100.6").status_code == 302

    def test_it_says_clearly_what_happened_and_for_how_long(self):
        for _ in range(self.limit):
            response = self.attempt("sue", WRONG)
        html = response.content.decode()
        assert response.status_code == 429
        assert "Too many failed sign-in attempts" in html
        assert "Try again in 15 minutes." in html
        assert "dashboard/auth.css" in html

    def test_a_success_clears_the_accounts_failures(self):
        for _ in range(self.limit - 1):
            self.attempt("sue", WRONG)
        assert self.attempt("sue", PASSWORD).status_code == 302
        self.client.logout()
        for _ in range(self.limit - 1):
            assert self.attempt("sue", WRONG).status_code == 200
        assert self.attempt("sue", PASSWORD).status_code == 302

    def test_a_success_does_not_clear_failures_against_other_accounts_from_the_address(self):
        # Otherwise anyone with an account could reset the counters between guesses at another's password.
        for _ in range(self.limit - 1):
            self.attempt("sue", WRONG, ip="198.51.100.8")
        assert self.attempt("otto", PASSWORD, ip="198.51.100.8").status_code == 302
        self.client.logout()
        self.attempt("sue", WRONG, ip="198.51.100.8")
        assert self.attempt("sue", PASSWORD, ip="203.0.113.9").status_code == 429

    def test_the_admin_login_is_throttled_too(self):
        self.p.supervisor.is_staff = True
        self.p.supervisor.save()
        for _ in range(self.limit):
            self.attempt("sue", WRONG, url="/admin/login/")
        response = self.attempt("sue", PASSWORD, url="/admin/login/")
        assert response.status_code == 429
        assert "Too many failed sign-in attempts" in response.content.decode()

    def test_it_logs_failures_with_account_and_address_but_never_the_password(self):
        with self.assertLogs("axes", level="WARNING") as logs:
            self.attempt("sue", WRONG, ip="198.51.100.3")
        text = "\n".join(logs.output)
        assert "login failure" in text and "sue" in text and "198.51.100.3" in text
        assert WRONG not in text
        assert all(WRONG not in attempt.post_data for attempt in AccessAttempt.objects.all())

    @override_settings(FLOORVIEW_CLIENT_IP_HEADER="HTTP_X_FORWARDED_FOR", FLOORVIEW_TRUSTED_PROXIES=1)
    def test_behind_a_proxy_it_counts_the_address_the_proxy_saw(self):
        # The client writes what it likes on the left of the header; only the proxy's entry counts.
        for n in range(self.limit):
            self.attempt(f"guess{n}", WRONG, ip="10.0.0.2", HTTP_X_FORWARDED_FOR=f"192.0.2.{n}, 198.51.100.20")
        assert self.attempt("sue", PASSWORD, ip="10.0.0.2", HTTP_X_FORWARDED_FOR="198.51.100.20").status_code == 429
        assert self.attempt("sue", PASSWORD, ip="10.0.0.2", HTTP_X_FORWARDED_FOR="198.51.100.21").status_code == 302


class ClientAddressTests(TestCase):
    """Which address failures count against."""

    def request(self, **meta):
        return RequestFactory().post("/login/", REMOTE_ADDR="10.0.0.2", **meta)

    def test_without_a_configured_header_it_ignores_forwarding_headers(self):
        assert client_ip(self.request(HTTP_X_FORWARDED_FOR="192.0.2.1")) == "10.0.0.2"

    @override_settings(FLOORVIEW_CLIENT_IP_HEADER="HTTP_X_FORWARDED_FOR", FLOORVIEW_TRUSTED_PROXIES=2)
    def test_with_a_configured_header_it_takes_the_entry_the_outermost_trusted_proxy_wrote(self):
        assert client_ip(self.request(HTTP_X_FORWARDED_FOR="6.6.6.6, 192.0.2.1, 10.0.0.1")) == "192.0.2.1"
        # A request that did not pass through the proxies: the peer's address.
        assert client_ip(self.request(HTTP_X_FORWARDED_FOR="192.0.2.1")) == "10.0.0.2"
        assert client_ip(self.request()) == "10.0.0.2"


class PasswordValidatorTests(TestCase):
    """Django's standard validators refuse weak passwords, in code and in the admin."""

    def test_it_refuses_weak_passwords(self):
        user = User(username="supervisor", first_name="Sam")
        for weak in ("short1", "password123", "12345678901234", "supervisor1", "Supervisor!"):
            try:
                validate_password(weak, user=user)
            except ValidationError:
                continue
            raise AssertionError(f"{weak!r} was accepted")
        validate_password("tidal-ocelot-harbour-91", user=user)

    @override_settings(PASSWORD_HASHERS=FAST_HASHERS)
    def test_the_admin_refuses_a_weak_password_for_a_new_user(self):
        admin = User.objects.create_superuser("root", password="unused-in-this-test")
        self.client.force_login(admin)
        form = {"username": "newbie", "usable_password": "true", "password1": "password123", "password2": "password123"}
        response = self.client.post("/admin/auth/user/add/", form)
        assert response.status_code == 200
        assert "This password is too common." in response.content.decode()
        assert not User.objects.filter(username="newbie").exists()
        strong = {**form, "password1": "tidal-ocelot-harbour-91", "password2": "tidal-ocelot-harbour-91"}
        assert self.client.post("/admin/auth/user/add/", strong).status_code == 302
        assert User.objects.filter(username="newbie").exists()
