"""Genesys' OAuth: the client-credentials grant at ``/oauth/token`` and its error replies."""

from __future__ import annotations

from aiohttp import web

from simulator.http_input import basic_credentials

# The OAuth client a request's bearer token belongs to (set by the middleware).
CLIENT_ID = web.RequestKey("client_id", str)


class GenesysOAuth:
    """Issue bearer tokens for client credentials.

    A part of ``GenesysApi``: it uses the API's tokens, faults and counters.
    """

    async def oauth_token(self, request: web.Request) -> web.Response:
        """Issue a token for client credentials (Basic auth, ``grant_type=client_credentials``)."""
        if self.faults.credentials_refused():
            return self._oauth_error(401, "invalid_client", "Invalid client credentials")
        client_id, client_secret = basic_credentials(request)
        form = await request.post()
        if client_id is None:
            # RFC 6749 also allows the credentials in the form body.
            client_id, client_secret = form.get("client_id"), form.get("client_secret")
        if not isinstance(client_id, str) or not isinstance(client_secret, str):
            return self._oauth_error(401, "invalid_client", "Client authentication is required")
        if not self.tokens.check_client(client_id, client_secret):
            return self._oauth_error(401, "invalid_client", "Invalid client credentials")
        grant = form.get("grant_type")
        if grant != "client_credentials":
            return self._oauth_error(400, "unsupported_grant_type", f"Unsupported grant type: {grant!s:.40}")
        token = self.tokens.issue(client_id)
        return web.json_response({"access_token": token, "token_type": "bearer", "expires_in": self.tokens.expires_in})

    def _oauth_error(self, status: int, error: str, description: str, headers: dict | None = None) -> web.Response:
        self.counters.unauthorized += status == 401
        self.counters.bad_requests += status == 400
        return web.json_response({"error": error, "error_description": description}, status=status, headers=headers)
