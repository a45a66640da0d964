"""The API's request handling, independent of the HTTP framework:
``Api.handle(Request) -> Response``.  ``routes.ROUTES`` names the handler of
every path; reads use one store snapshot, every change is one store
transaction (all or nothing, bulk creates included)."""

from __future__ import annotations

from overcast.api.auth import Auth, Context
from overcast.api.config import ApiConfig
from overcast.api.errors import ApiError, from_model_error
from overcast.api.kinds import default_sg_rule, segment_range
from overcast.api.repo import Repo, build_indexes
from overcast.api.routes import ROUTES
from overcast.api.seams import Seams
from overcast.api.session import Call, Session
from overcast.api.wire import Request, Response
from overcast.model import keys
from overcast.model.problems import ModelError
from overcast.store import StmTxn, Store, transact

__all__ = ["Api", "Request", "Response"]

_ANONYMOUS = Context("", False)  # the caller of a public route (no token asked)


class Api:
    def __init__(self, store: Store, cfg: ApiConfig | None = None,
                 auth: Auth | None = None, seams: Seams | None = None) -> None:
        self.store = store
        self.cfg = cfg or ApiConfig()
        self.auth = auth or Auth.noauth()
        self.session = Session(store, self.cfg, seams or Seams())
        transact(store, _ensure_indexes)
        transact(store, lambda tx: _ensure_defaults(Repo(tx, self.cfg, seams=self.session.seams)))

    def handle(self, req: Request) -> Response:
        try:
            return self._dispatch(req)
        except ModelError as err:
            return _error(from_model_error(err))
        except ApiError as err:
            return _error(err)

    def _dispatch(self, req: Request) -> Response:
        token = req.headers.get("x-auth-token")
        try:
            route, params = ROUTES.find(req.method, req.path)
        except ApiError:
            self.auth.context(token)  # a 401 comes before a 404 or 405
            raise
        ctx = _ANONYMOUS if route.public else self.auth.context(token)
        return route.handler(Call(ctx, req, params, self.session))


def _error(err: ApiError) -> Response:
    return Response(err.status, err.body())


def _ensure_indexes(tx: StmTxn) -> int:
    """Build the secondary indexes once for a store that lacks them or has an
    older layout.  A newer layout (a newer server wrote it) is refused: this
    server would rebuild it without the entries the newer one relies on."""
    stored = tx.get(keys.INDEX_META)
    if stored == keys.INDEX_VERSION.encode():
        return 0
    if stored is not None and stored.decode().isdigit() and \
            int(stored.decode()) > int(keys.INDEX_VERSION):
        raise RuntimeError(f"the store's indexes have layout {stored.decode()}, newer than this "
                           f"server's {keys.INDEX_VERSION}: upgrade every API server of the "
                           "store together")
    return build_indexes(tx)


def _ensure_defaults(repo: Repo) -> None:
    """What Neutron's database starts with: the default segment range (of the
    configuration) and the security group rule template."""
    segment_range.ensure_default(repo, repo.cfg)
    default_sg_rule.ensure_template(repo)
