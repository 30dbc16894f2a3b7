"""Label values for the integrations, bounded by construction.

Every value here ends up as a Prometheus label that lives until the process exits, so
each helper either maps its input onto a fixed set or caps the number of distinct
values per process (later newcomers share `OTHER`). Inputs are never echoed raw:
hosts lose userinfo and port, SQL statements are reduced to a verb and one table name,
exceptions to their class name.

Everything is computed once per distinct input and cached (bounded), because these
helpers sit on the hot path of every query, command and outbound call.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from functools import lru_cache

from lightkeeper.catalogue import MAX_LABEL_VALUE_LENGTH

OTHER = "other"
NO_TABLE = "none"

MAX_HOSTS = 64
MAX_TABLES = 256
MAX_EXCEPTION_TYPES = 128
MAX_TASKS = 512
SQL_CACHE_SIZE = 2048


class Capped:
    """A set of label values that stops growing at `limit`; newcomers read as OTHER.

    Lookups of known values take no lock: set membership is atomic under the GIL,
    and only a new value (rare by design) takes the lock to be admitted.
    """

    __slots__ = ("_limit", "_lock", "_seen")

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, value: str) -> str:
        if value in self._seen:
            return value
        with self._lock:
            if value in self._seen:
                return value
            if len(self._seen) >= self._limit:
                return OTHER
            self._seen.add(value)
            return value

    def __len__(self) -> int:
        return len(self._seen)


# --- Outbound hosts -----------------------------------------------------------------

_HOST_CHARS = re.compile(r"[a-z0-9._:-]{1,253}")
_hosts = Capped(MAX_HOSTS)
_host_cache: dict[str, str] = {}


def host_label(host: str | None) -> str:
    """Lower-case host name without userinfo, port or brackets; capped per process.

    The port is dropped on purpose: services reached on ephemeral or per-environment
    ports would otherwise mint a series per port, and the host already says which
    dependency is slow. Callers pass a parsed host (httpx `url.host`, urllib's
    `hostname`), never a raw URL, so query strings cannot reach this function.
    """
    if not host:
        return OTHER
    found = _host_cache.get(host)
    if found is not None:
        return found
    name = host.strip().lower().rstrip(".").strip("[]")
    label = _hosts(name) if _HOST_CHARS.fullmatch(name) else OTHER
    if len(_host_cache) < 4 * MAX_HOSTS:
        _host_cache[host] = label
    return label


# --- HTTP methods and status codes -------------------------------------------------

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT"})
_method_cache: dict[str, str] = {m: m for m in _METHODS}


def http_method(method: str | bytes) -> str:
    """One of the nine standard methods, else 'OTHER' (the catalogue's documented value)."""
    if isinstance(method, bytes):
        method = method.decode("latin-1")
    found = _method_cache.get(method)
    if found is not None:
        return found
    upper = method.upper()
    return upper if upper in _METHODS else "OTHER"


_STATUS = {code: str(code) for code in range(100, 600)}


def status_code(code: int) -> str:
    return _STATUS.get(code, OTHER)


# --- Exceptions ---------------------------------------------------------------------

_exception_types = Capped(MAX_EXCEPTION_TYPES)


def exception_type(exc: BaseException | type[BaseException]) -> str:
    """The exception's class name: bounded by the code base, capped all the same."""
    cls = exc if isinstance(exc, type) else type(exc)
    return _exception_types(cls.__name__[:MAX_LABEL_VALUE_LENGTH])


# --- Celery task names --------------------------------------------------------------

_TASK_CHARS = re.compile(rf"[A-Za-z0-9_.:-]{{1,{MAX_LABEL_VALUE_LENGTH}}}")
_tasks = Capped(MAX_TASKS)


def task_name(name: object) -> str:
    """A task name as it came in a message: checked and capped, it is broker input."""
    if isinstance(name, str) and _TASK_CHARS.fullmatch(name):
        return _tasks(name)
    return OTHER


# --- SQL ----------------------------------------------------------------------------

_SQL_TOKEN = re.compile(
    r"""
      (?P<skip>\s+|--[^\n]*|/\*.*?\*/)
    | (?P<string>'(?:[^']|'')*'|\$(?P<tag>[A-Za-z_]*)\$.*?\$(?P=tag)\$)
    | (?P<quoted>"(?:[^"]|"")*"|`[^`]*`|\[[^\]]*\])
    | (?P<word>[A-Za-z_][A-Za-z0-9_$]*)
    | (?P<open>\()
    | (?P<close>\))
    | (?P<dot>\.)
    | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)
_OPERATIONS = frozenset(
    {
        "SELECT",
        "INSERT",
        "UPDATE",
        "DELETE",
        "MERGE",
        "UPSERT",
        "REPLACE",
        "WITH",
        "VALUES",
        "CREATE",
        "ALTER",
        "DROP",
        "TRUNCATE",
        "COMMENT",
        "GRANT",
        "REVOKE",
        "BEGIN",
        "START",
        "COMMIT",
        "END",
        "ROLLBACK",
        "SAVEPOINT",
        "RELEASE",
        "PREPARE",
        "EXECUTE",
        "DEALLOCATE",
        "DECLARE",
        "FETCH",
        "CLOSE",
        "MOVE",
        "SET",
        "RESET",
        "SHOW",
        "EXPLAIN",
        "ANALYZE",
        "VACUUM",
        "REINDEX",
        "CLUSTER",
        "COPY",
        "CALL",
        "DO",
        "LOCK",
        "LISTEN",
        "NOTIFY",
        "UNLISTEN",
        "PRAGMA",
        "USE",
        "DESCRIBE",
        "REFRESH",
        "DISCARD",
        "CHECKPOINT",
    }
)
# The statement a WITH clause leads to.
_MAIN_VERBS = frozenset({"SELECT", "INSERT", "UPDATE", "DELETE", "MERGE", "VALUES"})
_CTE_WORDS = frozenset({"AS", "RECURSIVE", "MATERIALIZED", "NOT"})
# Words after which the next name is a table.
_TABLE_KEYWORDS = frozenset({"FROM", "JOIN", "INTO", "UPDATE", "TABLE", "TRUNCATE", "COPY"})
# Only after these can a name followed by "(" be a function (generate_series(...)),
# elsewhere "(" opens a column list (INSERT INTO t (a, b), CREATE TABLE t (...)).
_FUNCTION_CONTEXT = frozenset({"FROM", "JOIN"})
# Words that may sit between a table keyword and the table name.
_TABLE_MODIFIERS = frozenset(
    {
        "ONLY",
        "LATERAL",
        "IF",
        "NOT",
        "EXISTS",
        "TABLE",
        "TEMPORARY",
        "TEMP",
        "UNLOGGED",
        "LOW_PRIORITY",
        "IGNORE",
        "DELAYED",
        "QUICK",
    }
)
_TABLE_NAME = re.compile(r"[a-z_][a-z0-9_$]{0,62}")
_tables = Capped(MAX_TABLES)

_Token = tuple[str, str]


def _tokens(statement: str) -> Iterator[_Token]:
    for match in _SQL_TOKEN.finditer(statement):
        kind = match.lastgroup or "other"
        if kind != "skip":
            yield kind, match.group()


def _unquote(token: str) -> str:
    if token[0] in '"`[':
        return token[1:-1].replace('""', '"')
    return token


def _read_name(first: str, tokens: Iterator[_Token]) -> tuple[str, _Token | None]:
    """Consume a possibly qualified name; returns its last part and the next token."""
    name = _unquote(first)
    for kind, text in tokens:
        if kind != "dot":
            return name, (kind, text)
        part = next(tokens, None)
        if part is None or part[0] not in ("word", "quoted"):
            return name, part
        name = _unquote(part[1])
    return name, None


@lru_cache(maxsize=SQL_CACHE_SIZE)
def sql_labels(statement: str) -> tuple[str, str]:
    """(operation, table) for a statement: its verb and the first table it names.

    A tokenizer rather than a parser: strings, comments and quoted names are skipped
    or unquoted correctly, so a literal never becomes a label; the schema is dropped
    (schema-per-tenant databases would otherwise mint a series per tenant); CTE names
    are not tables; scanning stops at the first table. Results are cached per
    statement string (SQLAlchemy hands the same string object from its compiled
    cache), so the per-query cost is one dict lookup.
    """
    tokens = _tokens(statement)
    first = next(tokens, None)
    if first is None or first[0] != "word" or first[1].upper() not in _OPERATIONS:
        return "OTHER", NO_TABLE
    operation = first[1].upper()
    in_header = operation == "WITH"  # between WITH and the statement it leads to
    ctes: set[str] = set()
    table: str | None = None
    depth = 0
    keyword = operation if operation in _TABLE_KEYWORDS else None
    pending: _Token | None = None
    while True:
        token = pending if pending is not None else next(tokens, None)
        pending = None
        if token is None:
            break
        kind, text = token
        if kind in ("open", "close"):
            depth += 1 if kind == "open" else -1
            keyword = None
            continue
        if kind not in ("word", "quoted"):
            keyword = None
            continue
        upper = text.upper() if kind == "word" else ""
        if in_header and depth == 0:
            if upper in _MAIN_VERBS:
                operation, in_header = upper, False
                if table is not None:
                    break
                keyword = upper if upper in _TABLE_KEYWORDS else None
            elif upper not in _CTE_WORDS:
                ctes.add(_unquote(text).lower())
            continue
        if table is not None:
            continue  # found the table inside a CTE; still looking for the main verb
        if keyword is None:
            keyword = upper if upper in _TABLE_KEYWORDS else None
            continue
        if upper in _TABLE_MODIFIERS:
            continue
        name, pending = _read_name(text, tokens)
        if pending is not None and pending[0] == "open" and keyword in _FUNCTION_CONTEXT:
            keyword = None
            continue  # a set-returning function, not a table
        keyword = None
        if name.lower() not in ctes:
            table = name.lower()
            if not in_header:
                break
    return operation, _table_label(table)


def _table_label(table: str | None) -> str:
    if table is None:
        return NO_TABLE
    if not _TABLE_NAME.fullmatch(table):
        return OTHER
    return _tables(table)


# --- Redis --------------------------------------------------------------------------

# Command names only: keys and values never reach a label. Unknown commands (module
# commands, typos) share OTHER; PIPELINE stands for a whole pipeline round trip.
_REDIS_COMMAND_NAMES = """
    APPEND AUTH BGREWRITEAOF BGSAVE BITCOUNT BITFIELD BITFIELD_RO BITOP BITPOS BLMOVE BLMPOP BLPOP
    BRPOP BRPOPLPUSH BZMPOP BZPOPMAX BZPOPMIN CLIENT CLUSTER COMMAND CONFIG COPY DBSIZE DECR DECRBY
    DEL DISCARD DUMP ECHO EVAL EVALSHA EVALSHA_RO EVAL_RO EXEC EXISTS EXPIRE EXPIREAT EXPIRETIME
    FCALL FCALL_RO FLUSHALL FLUSHDB FUNCTION GEOADD GEODIST GEOHASH GEOPOS GEORADIUS
    GEORADIUSBYMEMBER GEOSEARCH GEOSEARCHSTORE GET GETBIT GETDEL GETEX GETRANGE GETSET HDEL HELLO
    HEXISTS HEXPIRE HGET HGETALL HGETDEL HGETEX HINCRBY HINCRBYFLOAT HKEYS HLEN HMGET HMSET HPERSIST
    HPEXPIRE HRANDFIELD HSCAN HSET HSETEX HSETNX HSTRLEN HTTL HVALS INCR INCRBY INCRBYFLOAT INFO KEYS
    LASTSAVE LCS LINDEX LINSERT LLEN LMOVE LMPOP LOLWUT LPOP LPOS LPUSH LPUSHX LRANGE LREM LSET LTRIM
    MEMORY MGET MIGRATE MODULE MONITOR MOVE MSET MSETNX MULTI OBJECT PERSIST PEXPIRE PEXPIREAT
    PEXPIRETIME PFADD PFCOUNT PFMERGE PING PSETEX PSUBSCRIBE PTTL PUBLISH PUBSUB PUNSUBSCRIBE QUIT
    RANDOMKEY READONLY READWRITE RENAME RENAMENX REPLICAOF RESET RESTORE ROLE RPOP RPOPLPUSH RPUSH
    RPUSHX SADD SAVE SCAN SCARD SCRIPT SDIFF SDIFFSTORE SELECT SET SETBIT SETEX SETNX SETRANGE
    SHUTDOWN SINTER SINTERCARD SINTERSTORE SISMEMBER SLOWLOG SMEMBERS SMISMEMBER SMOVE SORT SORT_RO
    SPOP SPUBLISH SRANDMEMBER SREM SSCAN SSUBSCRIBE STRLEN SUBSCRIBE SUNION SUNIONSTORE SUNSUBSCRIBE
    SWAPDB TIME TOUCH TTL TYPE UNLINK UNSUBSCRIBE UNWATCH WAIT WATCH XACK XADD XAUTOCLAIM XCLAIM XDEL
    XGROUP XINFO XLEN XPENDING XRANGE XREAD XREADGROUP XREVRANGE XSETID XTRIM ZADD ZCARD ZCOUNT ZDIFF
    ZDIFFSTORE ZINCRBY ZINTER ZINTERCARD ZINTERSTORE ZLEXCOUNT ZMPOP ZMSCORE ZPOPMAX ZPOPMIN
    ZRANDMEMBER ZRANGE ZRANGEBYLEX ZRANGEBYSCORE ZRANGESTORE ZRANK ZREM ZREMRANGEBYLEX
    ZREMRANGEBYRANK ZREMRANGEBYSCORE ZREVRANGE ZREVRANGEBYLEX ZREVRANGEBYSCORE ZREVRANK ZSCAN ZSCORE
    ZUNION ZUNIONSTORE PIPELINE
"""
REDIS_COMMANDS = frozenset(_REDIS_COMMAND_NAMES.split())
_redis_cache: dict[object, str] = {}


def redis_command(name: object) -> str:
    """The first word of a redis-py command ("CLIENT SETNAME" -> CLIENT), or OTHER."""
    found = _redis_cache.get(name)
    if found is not None:
        return found
    if isinstance(name, bytes):
        name = name.decode("latin-1")
    word = name.split(" ", 1)[0].upper() if isinstance(name, str) else ""
    label = word if word in REDIS_COMMANDS else OTHER
    if label != OTHER:  # unknown inputs are not cached: they could be anything
        _redis_cache[name if isinstance(name, str) else word] = label
    return label
