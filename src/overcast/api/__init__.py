"""overcast.api: the OpenStack Networking (Neutron v2.0) API over the store.

Exports the framework-free ``Api`` (``Api.handle(Request) -> Response``), the
HTTP app factory and the server entry point.
"""

from overcast.api.app import create_app
from overcast.api.auth import Auth, Context
from overcast.api.config import ApiConfig
from overcast.api.seams import Seams
from overcast.api.service import Api
from overcast.api.wire import Request, Response

__all__ = ["Api", "ApiConfig", "Auth", "Context", "Request", "Response", "Seams", "create_app"]
