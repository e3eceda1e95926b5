"""program-service: `DELETE /program/v1/user/{userId}` and `POST /program/v1/user/transfer` (user-delete's
calls).

Reproduces the real service's answers: the success message keeps the template placeholder the service never
fills in (`${req.params.userId}`, a quoting bug in its source), is a bare string for contributing-org users,
and every error carries `responseCode: SERVER_ERROR` whatever the HTTP status. Admin and sourcing-role users
are refused permanently. The sticky-404 defect and unanswered requests are left to fault rules.

The transfer (program-service release-8.0.0, `userService.transferAssetOfDeleteduser`) validates nothing: it
publishes `body.request` to Kafka (`cokreat_user_delete_kafka_topic`) and answers 200 with an envelope built
from the producer's result (no `id`, no `ver`, null message ids, `result: {}`). An empty `request` (lodash's
isEmpty: absent, null, `{}`, `[]`, `""`, a number, a boolean) fails the publish: 400 with
`ERR_DELETING_USER_FAILED` / "Unable to delete given user", no `responseCode` at all (the service reads an
undefined constant) and `result: {}` (a JavaScript Error serialises to `{}`); a Kafka failure answers the same
(a fault rule stands in for it). Malformed JSON is answered by body-parser's HTML page (400). The sandbox
records each accepted request instead of publishing it (`GET /_sandbox/transfers`).
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from starlette.responses import Response

from cokreat_jobs.dev.sandbox.admin import inspect_route
from cokreat_jobs.dev.sandbox.envelope import Api, error, json_response, ok, program_ts
from cokreat_jobs.dev.sandbox.router import Call, HtmlFailure
from cokreat_jobs.dev.sandbox.runtime import Sandbox, SeedError
from cokreat_jobs.dev.sandbox.state import Database

API_DELETE_USER = Api("api.delete.user", "1.0", "program")

API_TRANSFER = Api("api.user.transfer", "1.0", "program")  # utilsService.getAppIDForRESP of the path

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS users (id TEXT PRIMARY KEY, roles BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS transfers (seq INTEGER PRIMARY KEY AUTOINCREMENT, request BLOB NOT NULL)",
)
TRANSFER_FAILED_CODE = "ERR_DELETING_USER_FAILED"
TRANSFER_FAILED_MESSAGE = "Unable to delete given user"

DELETED_MESSAGE = "User deleted Successfully ${req.params.userId}"
NOT_FOUND_MESSAGE = "User not found in Sunbird"
REFUSED_MESSAGE = "Can only delete Individual or contributing org user"
REFUSED_ROLES = frozenset({"admin", "sourcing_admin", "sourcing_reviewer"})
REFUSED_STATUS = 400
"""The real service answers this refusal through its generic error path; the job decides on the reason."""


class Users:
    def __init__(self, db: Database) -> None:
        self._db = db
        db.ensure_schema(SCHEMA)

    def upsert(self, user_id: str, roles: list[str]) -> None:
        sql = "INSERT OR REPLACE INTO users (id, roles) VALUES (?, ?)"
        self._db.execute(sql, (user_id, orjson.dumps(roles)))

    def roles(self, user_id: str) -> list[str] | None:
        row = self._db.query_one("SELECT roles FROM users WHERE id = ?", (user_id,))
        return orjson.loads(row[0]) if row else None

    def delete(self, user_id: str) -> bool:
        return self._db.execute("DELETE FROM users WHERE id = ?", (user_id,)) > 0

    def ids(self) -> list[str]:
        return [r[0] for r in self._db.query("SELECT id FROM users ORDER BY rowid")]

    def clear(self) -> None:
        self._db.execute("DELETE FROM users")


class Transfers:
    """The transfer requests program-service accepted (what it would have published), in arrival order."""

    def __init__(self, db: Database) -> None:
        self._db = db
        db.ensure_schema(SCHEMA)

    def add(self, request: Any) -> None:
        self._db.execute("INSERT INTO transfers (request) VALUES (?)", (orjson.dumps(request),))

    def all(self) -> list[Any]:
        return [orjson.loads(r[0]) for r in self._db.query("SELECT request FROM transfers ORDER BY seq")]

    def clear(self) -> None:
        self._db.execute("DELETE FROM transfers")


def _lodash_empty(value: Any) -> bool:
    # _.isEmpty: true for null/undefined, numbers, booleans, and empty strings, arrays and objects
    if value is None or isinstance(value, bool | int | float):
        return True
    if isinstance(value, str | list | dict):
        return len(value) == 0
    return False


def _transfer_ok() -> Response:
    # successResponse(kafkaResult): the producer's result has no apiId, msgid, responseCode or result
    params = {"resmsgid": None, "msgid": None, "status": "successful", "err": None, "errmsg": None}
    return json_response({"ts": program_ts(), "params": params, "responseCode": "OK", "result": {}})


def _transfer_failed(call: Call) -> Response:
    # errorResponse(rspObj) with responseCode.SERVER_err, which is undefined: the key is left out
    msgid = call.header("x-msgid") or str(uuid.uuid4())
    params = {
        "resmsgid": call.header("x-request-id") or msgid,
        "msgid": msgid,
        "status": "failed",
        "err": TRANSFER_FAILED_CODE,
        "errmsg": TRANSFER_FAILED_MESSAGE,
    }
    body = {
        "id": API_TRANSFER.id,
        "ver": API_TRANSFER.ver,
        "ts": program_ts(),
        "params": params,
        "result": {},
    }
    return json_response(body, 400)


def _failure(status: int, reason: str) -> Response:
    return error(
        API_DELETE_USER,
        status,
        "ERR_DELETING_USER_FAILED",
        "Unable to delete given user",
        response_code="SERVER_ERROR",
        result={"response": reason},
    )


def register(sandbox: Sandbox) -> None:
    users = Users(sandbox.db)
    transfers = Transfers(sandbox.db)
    sandbox.services["users"] = users
    sandbox.services["transfers"] = transfers
    sandbox.on_reset(users.clear)
    sandbox.on_reset(transfers.clear)

    def seed_users(items: list[Any]) -> int:
        parsed: list[tuple[str, list[str]]] = []
        for item in items:
            roles: list[str]
            if isinstance(item, str):
                user_id, roles = item, []
            elif isinstance(item, dict) and isinstance(item.get("id"), str):
                user_id, roles = item["id"], item.get("roles") or []
            else:
                raise SeedError(f"a user is an id or an object with an id: {item!r}")
            if not user_id or not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
                raise SeedError(f"bad user: {item!r}")
            parsed.append((user_id, roles))
        for user_id, roles in parsed:
            users.upsert(user_id, roles)
        return len(parsed)

    async def delete_user(call: Call) -> Response:
        user_id = call.params["userId"]
        roles = users.roles(user_id)
        if roles is None:
            return _failure(404, NOT_FOUND_MESSAGE)
        if REFUSED_ROLES.intersection(roles):
            return _failure(REFUSED_STATUS, REFUSED_MESSAGE)
        users.delete(user_id)
        # Contributing-org users ("user" role) go through another branch that answers a bare string.
        result: Any = DELETED_MESSAGE if "user" in roles else {"response": DELETED_MESSAGE}
        return ok(API_DELETE_USER, result)

    async def list_users(call: Call) -> Response:
        return json_response({"users": users.ids()})

    async def transfer(call: Call) -> Response:
        try:
            body = call.json()
        except HtmlFailure as exc:  # body-parser refuses malformed JSON with its own page
            raise HtmlFailure(400, exc.message) from exc
        request = body.get("request") if isinstance(body, dict) else None
        if _lodash_empty(request):
            return _transfer_failed(call)
        transfers.add(request)
        return _transfer_ok()

    async def list_transfers(call: Call) -> Response:
        return json_response({"transfers": transfers.all()})

    sandbox.add_seed_kind("users", seed_users)
    sandbox.router.add("DELETE", "/program/v1/user/{userId}", delete_user, API_DELETE_USER)
    inspect_route(sandbox, "GET", "/_sandbox/users", list_users)
    sandbox.router.add("POST", "/program/v1/user/transfer", transfer, API_TRANSFER)
    inspect_route(sandbox, "GET", "/_sandbox/transfers", list_transfers)
