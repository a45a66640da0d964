"""Typed access to the logical model inside one store transaction (or one read
snapshot): get/list/save/remove model objects by kind, with a per-transaction
cache so a request decodes each object once."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from overcast.api.config import ApiConfig
from overcast.api.errors import Conflict, not_found
from overcast.api.seams import Seams
from overcast.model import keys
from overcast.model.types import Host, Resource
from overcast.store import Store

T = TypeVar("T", bound=Resource)


class View(Protocol):
    """What a caller derives from one ``where`` group (its objects by some key,
    in some order), kept current by the Repo as the transaction saves and
    removes objects: each change costs the view one call, not a rebuild."""

    def add(self, obj: Any) -> None: ...
    def discard(self, obj: Any) -> None: ...


V = TypeVar("V", bound=View)


class Reader(Protocol):
    # track=False: the commit need not re-check what was read
    def get(self, key: str, *, track: bool = True) -> bytes | None: ...
    # items with .key and .value
    def range(self, prefix: str, *, track: bool = True) -> list[Any]: ...


class Writer(Reader, Protocol):
    def put(self, key: str, value: bytes, lease: int = 0) -> None: ...
    def delete(self, key: str) -> None: ...


class Snapshot:
    """A Reader over the store for requests that only read."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def get(self, key: str, *, track: bool = True) -> bytes | None:
        kv = self._store.get(key)
        return None if kv is None else kv.value

    def range(self, prefix: str, *, track: bool = True) -> list[Any]:
        return self._store.range(prefix).kvs


class DecodeCache:
    """Decoded objects by key and modification revision, shared across requests:
    an unchanged object is parsed once, however often it is read."""

    def __init__(self, limit: int = 200_000) -> None:
        self._items: dict[str, tuple[int, Resource]] = {}
        self._limit = limit

    def decode(self, cls: type[Resource], kv: Any) -> Resource:
        hit = self._items.get(kv.key)
        if hit is not None and hit[0] == kv.mod_revision:
            return hit[1]
        obj = cls.from_stored(json.loads(kv.value))
        if len(self._items) >= self._limit:
            self._items.clear()
        self._items[kv.key] = (kv.mod_revision, obj)
        return obj


class Repo:
    def __init__(self, tx: Reader, cfg: ApiConfig | None = None,
                 decoded: DecodeCache | None = None, bulk: bool = False,
                 seams: Seams | None = None) -> None:
        self.tx = tx
        self.cfg = cfg or ApiConfig()
        self.seams = seams or Seams()
        self.bulk = bulk  # rendering a whole collection: prefer one range over many gets
        self._decoded = decoded if decoded is not None else DecodeCache()
        self._lists: dict[str, dict[str, Resource]] = {}
        self._got: dict[str, Resource | None] = {}  # objects read by key (None: absent)
        # (kind, attr) -> attribute value -> the objects with it, by id; a value
        # present is complete; with (kind, attr) in _grouped every value is
        self._groups: dict[tuple[str, str], dict[Any, dict[str, Resource]]] = {}
        self._grouped: set[tuple[str, str]] = set()
        self._views: dict[tuple[str, str, Any], dict[str, View]] = {}
        self._memo: dict[str, Any] = {}

    def memo(self, name: str, compute: Callable[[], Any]) -> Any:
        """A value computed once per request (e.g. all port statuses)."""
        if name not in self._memo:
            self._memo[name] = compute()
        return self._memo[name]

    def memoized(self, name: str) -> Any:
        """The value ``memo`` computed for ``name`` (None if it has not)."""
        return self._memo.get(name)

    # reading ------------------------------------------------------------
    def all(self, cls: type[T]) -> list[T]:
        return list(self._index(cls).values())  # type: ignore[arg-type]

    @staticmethod
    def _prefix(cls: type[Resource]) -> str:
        # hosts are written by agents under their own prefix, keyed by name
        return keys.host() if cls.KIND == "host" else keys.obj(cls.KIND)

    @staticmethod
    def _key(obj: Resource) -> str:
        if isinstance(obj, Host):
            return keys.host(obj.host)
        return keys.obj(obj.KIND, obj.id)

    def _index(self, cls: type[Resource]) -> dict[str, Resource]:
        cached = self._lists.get(cls.KIND)
        if cached is None:
            cached = {}
            for kv in self.tx.range(self._prefix(cls)):
                obj = self._decoded.decode(cls, kv)
                cached[obj.id] = obj
            self._lists[cls.KIND] = cached
        return cached

    def get(self, cls: type[T], id_: str) -> T | None:
        cached = self._lists.get(cls.KIND)
        if cached is not None or cls.KIND == "host":
            return self._index(cls).get(id_)  # type: ignore[return-value]
        key = keys.obj(cls.KIND, id_)
        if key in self._got:
            return self._got[key]  # type: ignore[return-value]
        raw = self.tx.get(key)
        obj = None if raw is None else cls.from_stored(json.loads(raw))
        self._got[key] = obj
        return obj

    def must(self, cls: type[T], id_: str, visible: Callable[[T], bool] | None = None) -> T:
        obj = self.get(cls, id_) if isinstance(id_, str) else None
        if obj is None or (visible is not None and not visible(obj)):
            raise not_found(cls.KIND, str(id_))
        return obj

    def where(self, cls: type[T], **match: Any) -> list[T]:
        """Objects whose attributes equal ``match``, in id order.  Through a
        secondary index when one of the attributes has one (one small range
        plus a get per hit, once per transaction; what the transaction saves
        keeps it current), else by scanning every object of the kind."""
        indexed = keys.INDEXED.get(cls.KIND, ())
        attr = next((a for a, v in match.items() if a in indexed and isinstance(v, str) and v),
                    None)
        if attr is None:
            candidates: list[T] = self.all(cls)
        else:
            found = self._group(cls, attr, match[attr])
            candidates = [found[i] for i in sorted(found)]  # type: ignore[misc]
        return [o for o in candidates if all(getattr(o, k) == v for k, v in match.items())]

    def holding(self, cls: type[T], attr: str, value: str) -> list[T]:
        """Objects one of whose ``list.field`` items (an ``INDEXED`` attribute)
        has ``value``, in id order: through the index, as ``where``."""
        assert attr in keys.INDEXED.get(cls.KIND, ()), (cls.KIND, attr)
        found = self._group(cls, attr, value)
        return [found[i] for i in sorted(found)]  # type: ignore[misc]

    def _group(self, cls: type[Resource], attr: str, value: str) -> dict[str, Resource]:
        """The objects of ``cls`` whose ``attr`` is (or holds) ``value``, by id."""
        groups = self._groups.setdefault((cls.KIND, attr), {})
        found = groups.get(value)
        if found is not None:
            return found
        if (cls.KIND, attr) in self._grouped:
            return {}
        if self.bulk or cls.KIND in self._lists:  # every object is (or will be) at hand
            groups.clear()
            for o in self.all(cls):
                for v in keys.index_values(o, attr):
                    groups.setdefault(v, {})[o.id] = o
            self._grouped.add((cls.KIND, attr))
            return groups.get(value, {})
        prefix = keys.index(cls.KIND, attr, value)
        ids = [kv.key[len(prefix):] for kv in self.tx.range(prefix)]
        found = groups[value] = {o.id: o for o in (self.get(cls, i) for i in ids)
                                 if o is not None}
        return found

    def view(self, cls: type[T], attr: str, value: str, name: str,
             make: Callable[[list[T]], V]) -> V:
        """``make(where(cls, attr=value))``, once per transaction and ``name``,
        then kept current (``View``).  ``attr`` must have a secondary index."""
        assert attr in keys.INDEXED.get(cls.KIND, ()), (cls.KIND, attr)
        views = self._views.setdefault((cls.KIND, attr, value), {})
        found = views.get(name)
        if found is None:
            found = views[name] = make(self.where(cls, **{attr: value}))
        return found  # type: ignore[return-value]

    def _regroup(self, new: Resource | None, old: Resource | None) -> None:
        """Keep the groups ``where`` has read, and their views, in step with one
        saved or removed object."""
        some = new if new is not None else old
        assert some is not None
        for attr in keys.INDEXED.get(some.KIND, ()):
            if self._views:
                self._update_views(some.KIND, attr, new, old)
            groups = self._groups.get((some.KIND, attr))
            if groups is None:
                continue
            if old is not None:
                for value in keys.index_values(old, attr):
                    groups.get(value, {}).pop(old.id, None)
            if new is None:
                continue
            for value in keys.index_values(new, attr):
                if value in groups:
                    groups[value][new.id] = new
                elif (some.KIND, attr) in self._grouped:
                    groups[value] = {new.id: new}

    def _update_views(self, kind: str, attr: str, new: Resource | None,
                      old: Resource | None) -> None:
        for value in keys.index_values(old, attr) if old is not None else ():
            for v in self._views.get((kind, attr, value), {}).values():
                v.discard(old)
        for value in keys.index_values(new, attr) if new is not None else ():
            for v in self._views.get((kind, attr, value), {}).values():
                v.add(new)

    def new_id(self) -> str:
        return self.seams.new_id()

    # reads the commit does not depend on: what agents write (hosts, status),
    # only shown, and hints the caller re-checks itself (see ``StmTxn.range``)
    def peek(self, prefix: str) -> list[Any]:
        return self.tx.range(prefix, track=False)

    def peek_json(self, key: str) -> Any:
        raw = self.tx.get(key, track=False)
        return None if raw is None else json.loads(raw)

    def peek_all(self, cls: type[T]) -> list[T]:
        return [self._decoded.decode(cls, kv)  # type: ignore[misc]
                for kv in self.peek(self._prefix(cls))]

    def get_json(self, key: str) -> Any:
        raw = self.tx.get(key)
        return None if raw is None else json.loads(raw)

    def range_json(self, prefix: str) -> list[tuple[str, Any]]:
        return [(kv.key, json.loads(kv.value)) for kv in self.tx.range(prefix)]

    # writing ------------------------------------------------------------
    def _writer(self) -> Writer:
        return self.tx  # type: ignore[return-value]

    def save(self, obj: T, *, new: bool = False) -> T:
        stamp = self.seams.timestamp()
        if new:
            # an id the caller chose may name an existing object (perhaps another
            # project's): never overwrite it.  The read also makes two racing
            # creates of one id conflict.
            if self.tx.get(self._key(obj)) is not None:
                camel = "".join(part.capitalize() for part in obj.KIND.split("_"))
                raise Conflict(f"{obj.KIND} {obj.id} already exists", type=f"{camel}Exists")
            obj = obj.replace(created_at=obj.created_at or stamp, updated_at=stamp,
                              revision_number=1)
        else:
            obj = obj.replace(updated_at=stamp, revision_number=obj.revision_number + 1)
        old = None if new else self.get(type(obj), obj.id)
        self._reindex(obj, old)
        self._recount(obj, old)
        self._regroup(obj, old)
        self.put_json(self._key(obj), obj.to_stored())
        if obj.KIND in self._lists:
            self._lists[obj.KIND][obj.id] = obj
        self._got[self._key(obj)] = obj
        return obj

    def remove(self, obj: Resource) -> None:
        self._reindex(None, obj)
        self._recount(None, obj)
        self._regroup(None, obj)
        self._writer().delete(self._key(obj))
        self._lists.get(obj.KIND, {}).pop(obj.id, None)
        self._got[self._key(obj)] = None

    def _reindex(self, new: Resource | None, old: Resource | None) -> None:
        """Keep the secondary index entries of one object in step with it."""
        some = new if new is not None else old
        assert some is not None
        for attr in keys.INDEXED.get(some.KIND, ()):
            before = keys.index_values(old, attr) if old is not None else frozenset()
            after = keys.index_values(new, attr) if new is not None else frozenset()
            for value in sorted(before - after):
                self._writer().delete(keys.index(some.KIND, attr, value, some.id))
            for value in sorted(after - before):
                self._writer().put(keys.index(some.KIND, attr, value, some.id), b"")

    def _recount(self, new: Resource | None, old: Resource | None) -> None:
        """Keep the projects' usage counters (``keys.usage``) in step with one object."""
        some = new if new is not None else old
        assert some is not None
        if some.KIND not in keys.COUNTED:
            return
        before = getattr(old, "project_id", "") if old is not None else ""
        after = getattr(new, "project_id", "") if new is not None else ""
        if before == after:
            return
        if before:
            self._add_usage(keys.usage(before, some.KIND), -1)
        if after:
            self._add_usage(keys.usage(after, some.KIND), 1)

    def _add_usage(self, key: str, delta: int) -> None:
        count = self.usage(key) + delta
        if count > 0:
            self._writer().put(key, str(count).encode())
        else:
            self._writer().delete(key)

    def usage(self, key: str) -> int:
        """A usage counter's value (0 when absent); the commit depends on it."""
        raw = self.tx.get(key)
        return int(raw) if raw else 0

    def put_json(self, key: str, value: Any) -> None:
        data = json.dumps(value, separators=(",", ":"), sort_keys=True).encode()
        self._writer().put(key, data)

    def delete_key(self, key: str) -> None:
        self._writer().delete(key)


def build_indexes(tx: Writer) -> int:
    """Write every secondary index entry and usage counter from the objects (a
    store written before they existed, or by an older layout); marks the
    layout version.  Returns the number of entries and counters written."""
    written = 0
    for kv in tx.range(keys.IDX):
        tx.delete(kv.key)
    for kind, attrs in keys.INDEXED.items():
        for kv in tx.range(keys.obj(kind)):
            data = json.loads(kv.value)
            for attr in attrs:
                for value in sorted(keys.index_values(data, attr)):
                    tx.put(keys.index(kind, attr, value, data["id"]), b"")
                    written += 1
    written += _count_usage(tx)
    tx.put(keys.INDEX_META, keys.INDEX_VERSION.encode())
    return written


def _count_usage(tx: Writer) -> int:
    """Every usage counter, from the objects; returns the number written."""
    for kv in tx.range(keys.USAGE):
        tx.delete(kv.key)
    counts: dict[str, int] = {}
    for kind in keys.COUNTED:
        for kv in tx.range(keys.obj(kind)):
            project = json.loads(kv.value).get("project_id")
            if isinstance(project, str) and project:
                key = keys.usage(project, kind)
                counts[key] = counts.get(key, 0) + 1
    for key, count in counts.items():
        tx.put(key, str(count).encode())
    return len(counts)
