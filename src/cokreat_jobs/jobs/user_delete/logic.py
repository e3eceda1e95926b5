"""user-delete: on a user deleted in Sunbird ED, delete that user's personal information in coKreat.

One call per event, `DELETE {program-service-baseUrl}/program/v1/user/{userId}` (skipped when the action is
not delete-user, the id blank or dots only); the decisions are all in how program-service's answer is read
(JOBS.md, user-delete):

- 200 with responseCode OK: deleted.
- "Can only delete Individual or contributing org user" (admin / sourcing roles), whatever the status: a
  permanent refusal; the reason decides, not the code.
- 404 whose result.response says the user was not found: nothing to delete, a success.
- Any other 404: transient. After its first 404 program-service answers every error with 404 (a defect of
  the service), so a 404 that does not say "not found" is an error in disguise, retried.
- Every 5xx, 429, connection error and timeout: transient, retried with backoff, then the failed topic.
- Any other 4xx, and a 200 without OK: permanent, the failed topic without retry.

**Config shapes** (:func:`input_shape`). Release-7's ``kafka.input.topic`` reads deletions only, as before.
Release-8's keys (``kafka.input.user_delete_topic``, ``kafka.input.ownership_transfer_topic``, default
``sunbirddev.user.ownership.transfer``) are the shape in use as soon as either is set, whatever
``kafka.input.topic`` says (the packaged default derives it from ``job.env``, the wrong name in a Sunbird
deployment). Under release-8, as the reference's ``Event.isValid``, every event must have ``object.type``
``User`` (any case), and an ``ownership-transfer`` event (non-blank ``edata.fromUserProfile.userId``;
``edata.toUserProfile`` with non-blank ``userId``, ``firstName``, ``lastName`` and non-empty ``roles``)
becomes ``POST {program-service-baseUrl}/program/v1/user/transfer`` with body ``{"request": <the event>}``.
Each topic carries its own action: a transfer read from the user-delete topic is skipped (program-service's
transfer handler republishes the request to ``cokreat_user_delete_kafka_topic``, by default the same
``sunbirddev.delete.user``: posting it again would loop), and so is a deletion read from the transfer topic.

A transfer's answer: 200 with responseCode OK is done; 400 with ``ERR_DELETING_USER_FAILED`` is what
program-service answers when it could not publish the request to Kafka (its only other 400, an empty request,
cannot come from us), so it is transient, as are 5xx and 429; any other 4xx (a 404: a program-service
without the route) and a 200 without OK are permanent.

The user id is personal data: logs carry its hash only (keyed with the deployment's ``log.id_hash_salt``),
never the id (nor object.id, which Lern sets to the same id); every text this job logs or writes to
``failInfo.error`` has each occurrence of the id taken out (:func:`scrub_user_id`), whether the request path,
program-service's own reason quoting it, or a redirect loop's URLs. A transfer's profiles carry names: its
logs carry the two users' hashes only, and its error texts have both ids and every name taken out.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, quote_plus

from yarl import URL

from cokreat_jobs.adapters.http import ServiceClient
from cokreat_jobs.core.config import JobConfig
from cokreat_jobs.core.counting import CountingProcessor, Metrics
from cokreat_jobs.core.errors import (
    ConfigError,
    InvalidField,
    PermanentError,
    TransientError,
    exception_message,
)
from cokreat_jobs.core.event import Event, record_topic
from cokreat_jobs.core.failed import failed_event
from cokreat_jobs.core.logs import ID_HASH_SALT_KEY, IdHasher, get_logger, log_event
from cokreat_jobs.core.naming import is_dot_segment
from cokreat_jobs.core.outcome import Outcome
from cokreat_jobs.core.response import HttpResponse

JOB_NAME = "user-delete"
# The Scala job's name, which was its Flink job name and its metric group (UserDeleteConfig)
REFERENCE_JOB_NAME = "cokreat-user-delete"
DELETE_ACTION = "delete-user"
DOT_SEGMENT_REASON = "edata.userId is not a valid user id: a dot segment"
NOT_FOUND_MARKERS = ("user not found in sunbird", "user not found in os", "user not found")
REFUSED_MARKER = "can only delete individual or contributing org user"
USER_PLACEHOLDER = "<user>"
_PATH_MARKER = "/program/v1/user/"
# the id segment of the delete path, however it was encoded (a redirect may have re-encoded it)
_PATH_ID_RE = re.compile(re.escape(_PATH_MARKER) + r"[^\s/?#'\"<>(){}\[\],;]+")

TRANSFER_ACTION = "ownership-transfer"
TRANSFER_PATH = "/program/v1/user/transfer"
TRANSFER_LABEL = f"POST {TRANSFER_PATH}"
# program-service's answer (HTTP 400) when it could not publish the transfer to Kafka
TRANSFER_PUBLISH_FAILED = "ERR_DELETING_USER_FAILED"

# config keys: release-7 read one topic, release-8 two
RELEASE_7_TOPIC_KEY = "kafka.input.topic"
USER_DELETE_TOPIC_KEY = "kafka.input.user_delete_topic"
TRANSFER_TOPIC_KEY = "kafka.input.ownership_transfer_topic"
RELEASE_8_KEYS = (USER_DELETE_TOPIC_KEY, TRANSFER_TOPIC_KEY)
DEFAULT_TRANSFER_TOPIC = "sunbirddev.user.ownership.transfer"  # the reference's shipped value

log = get_logger("cokreat_jobs.user_delete")


@dataclass(frozen=True)
class InputShape:
    """Which config shape is in use, and the topics it reads."""

    release: int  # 7 or 8
    delete_topic: str
    transfer_topic: str | None  # release-8 only

    @property
    def topics(self) -> list[str]:
        return list(
            dict.fromkeys([self.delete_topic, *([self.transfer_topic] if self.transfer_topic else [])])
        )

    def actions(self, topic: str | None) -> frozenset[str]:
        """The actions an event read from ``topic`` may carry (None: topic unknown, any the shape has)."""
        if self.release == 7:
            return frozenset({DELETE_ACTION})
        if topic is None:
            return frozenset({DELETE_ACTION, TRANSFER_ACTION})
        actions = set()
        if topic == self.delete_topic:
            actions.add(DELETE_ACTION)
        if topic == self.transfer_topic:
            actions.add(TRANSFER_ACTION)
        return frozenset(actions)

    def topic_for(self, action: str) -> str:
        """Where an event of ``action`` is read from (replay sends it back there)."""
        if action == TRANSFER_ACTION and self.transfer_topic:
            return self.transfer_topic
        return self.delete_topic


def _configured(cfg: JobConfig, key: str) -> str | None:
    if not cfg.has(key):
        return None
    value = cfg.get_str(key).strip()
    return value or None


def input_shape(cfg: JobConfig) -> InputShape:
    """Release-8 when either release-8 key is set (then ``kafka.input.topic`` is ignored), else release-7.

    A release-8 config without ``kafka.input.user_delete_topic`` is refused (the reference did not start
    either), rather than falling back to the packaged, ``job.env``-derived ``kafka.input.topic``.
    """
    if not is_release_8(cfg):
        return InputShape(7, cfg.get_str(RELEASE_7_TOPIC_KEY), None)
    delete_topic = _configured(cfg, USER_DELETE_TOPIC_KEY)
    if delete_topic is None:
        raise ConfigError(
            f"a release-8 key ({' / '.join(k for k in RELEASE_8_KEYS if cfg.has(k))}) is set but "
            f"{USER_DELETE_TOPIC_KEY} is missing or blank: set it to the topic Lern publishes deletions to "
            f"({RELEASE_7_TOPIC_KEY} is not read with release-8 keys)"
        )
    transfer_topic = _configured(cfg, TRANSFER_TOPIC_KEY) or DEFAULT_TRANSFER_TOPIC
    return InputShape(8, delete_topic, transfer_topic)


def input_topics(cfg: JobConfig) -> list[str]:
    return input_shape(cfg).topics


def is_release_8(cfg: JobConfig) -> bool:
    """Whether the config has release-8's shape (either release-8 key set), as :func:`input_shape` decides,
    without its refusal of a shape without the deletions' topic (that is the config check's to report)."""
    return any(cfg.has(k) for k in RELEASE_8_KEYS)


def event_action(event: dict[str, Any]) -> str:
    """``edata.action``, "" when it is absent or not text."""
    edata = event.get("edata")
    action = edata.get("action") if isinstance(edata, dict) else None
    return action if isinstance(action, str) else ""


def reason_text(resp: HttpResponse) -> str:
    """program-service puts its reason in result.response (a string), errmsg is generic."""
    value = resp.result.get("response") if isinstance(resp.result, dict) else None
    return value if isinstance(value, str) else ""


def says_not_found(resp: HttpResponse) -> bool:
    return any(m in reason_text(resp).lower() for m in NOT_FOUND_MARKERS)


def says_refused(resp: HttpResponse) -> bool:
    return REFUSED_MARKER in reason_text(resp).lower() or REFUSED_MARKER in (resp.text or "").lower()


def is_transient(resp: HttpResponse) -> bool:
    if says_refused(resp):
        return False
    if resp.status == 404:
        return not says_not_found(resp)
    return resp.status == 429 or resp.status >= 500


def interpret(resp: HttpResponse) -> str:
    """Classify a final (non-retried) answer: 'deleted' | 'not-found'; raises PermanentError otherwise."""
    if says_refused(resp):
        raise PermanentError("Can only delete Individual or contributing org user", status=resp.status)
    if resp.status == 200 and resp.response_code == "OK":
        return "deleted"
    if resp.status == 404 and says_not_found(resp):
        return "not-found"
    if is_transient(resp):  # only reached when the caller did not retry
        raise TransientError(f"program-service answered {resp.status}", status=resp.status)
    detail = reason_text(resp) or resp.errmsg or (resp.text or "")[:200]
    raise PermanentError(
        f"program-service refused the deletion: HTTP {resp.status} {detail}".strip(), status=resp.status
    )


def skip_reason(action: str, user_id: str) -> str:
    """Why the event is skipped ("" when it is a deletion to send): not a delete-user event, a blank user id,
    or one of dots only (``..`` would send ``DELETE /program/v1/``, ``.`` ``DELETE /program/v1/user/``: HTTP
    clients resolve dot segments, so percent-encoding cannot keep them one segment)."""
    if action != DELETE_ACTION:
        return "not a delete-user event"
    if not user_id.strip():
        return "edata.userId is blank"
    if is_dot_segment(user_id):
        return DOT_SEGMENT_REASON
    return ""


def _blank(value: Any) -> bool:
    return not isinstance(value, str) or not value.strip()


def transfer_skip_reason(event: Event) -> str:
    """Why a transfer event is skipped ("" when it is one to send), as the reference's ``isValid``: a
    non-blank ``edata.fromUserProfile.userId``; ``edata.toUserProfile`` with non-blank ``userId``,
    ``firstName``, ``lastName`` and a non-empty ``roles`` list. Raises :class:`InvalidField` for a field of
    the wrong type (a profile that is not an object, roles that are not a list, a name that is not text)."""
    from_id = event.get_str("edata.fromUserProfile.userId")
    to = event.get_dict("edata.toUserProfile")
    for name in ("userId", "firstName", "lastName"):
        event.get_str(f"edata.toUserProfile.{name}")  # the type check
    roles = event.get_list("edata.toUserProfile.roles")
    if not from_id.strip():
        return "edata.fromUserProfile.userId is blank"
    missing = [n for n in ("userId", "firstName", "lastName") if _blank(to.get(n))]
    if missing:
        return (
            "edata.toUserProfile." + ", ".join(missing) + (" is blank" if len(missing) == 1 else " are blank")
        )
    if not roles:
        return "edata.toUserProfile.roles is empty"
    return ""


def transfer_body(event: dict[str, Any]) -> dict[str, Any]:
    """The transfer request: the whole event under ``request`` (as the reference sent it)."""
    return {"request": event}


def transfer_is_transient(resp: HttpResponse) -> bool:
    if resp.status == 400 and resp.err == TRANSFER_PUBLISH_FAILED:
        return True  # program-service could not publish the transfer to Kafka
    return resp.status == 429 or resp.status >= 500


def interpret_transfer(resp: HttpResponse) -> str:
    """Classify a final transfer answer: 'transferred'; raises PermanentError (or TransientError when the
    caller did not retry) otherwise."""
    if resp.ok:
        return "transferred"
    if transfer_is_transient(resp):
        raise TransientError(f"program-service answered {resp.status} to the transfer", status=resp.status)
    if resp.status == 404:
        raise PermanentError(
            f"program-service answered 404 to {TRANSFER_LABEL}: it has no such route (ownership transfer "
            "needs program-service of release-8.0.0 or later)",
            status=404,
        )
    detail = reason_text(resp) or resp.errmsg or (resp.text or "")[:200]
    raise PermanentError(
        f"program-service refused the transfer: HTTP {resp.status} {detail}".strip(), status=resp.status
    )


def personal_values(event: dict[str, Any]) -> list[str]:
    """The ids and names a transfer event carries: taken out of every text the job writes."""
    found: list[str] = []
    edata = event.get("edata")
    if not isinstance(edata, dict):
        return found
    for key in ("fromUserProfile", "toUserProfile", "actionBy"):
        profile = edata.get(key)
        if isinstance(profile, dict):
            for name in ("userId", "firstName", "lastName", "userName"):
                if isinstance(profile.get(name), str):
                    found.append(profile[name])
    for value in (
        edata.get("userId"),
        event.get("object", {}).get("id") if isinstance(event.get("object"), dict) else None,
    ):
        if isinstance(value, str):
            found.append(value)
    return found


def delete_path(user_id: str) -> str:
    # one path segment, percent-encoded (the reference sent the id raw, so '/' or '?' broke the path)
    return f"/program/v1/user/{quote(user_id, safe='')}"


def _id_forms(user_id: str) -> set[str]:
    """The ways ``user_id`` can show in a text: as it is, percent-encoded (as we send it, as yarl or a
    redirect's Location may re-encode it, as a form value), JSON- and repr-escaped."""
    forms = {user_id, user_id.strip()}
    forms |= {
        quote(user_id, safe=""),
        quote(user_id),
        quote(user_id, safe="/:@!$&'()*+,;="),
        quote_plus(user_id),
    }
    try:
        forms.add(URL("http://h" + delete_path(user_id)).raw_path[len(_PATH_MARKER) :])
        forms.add(str(URL("http://h").with_path(_PATH_MARKER + user_id)).split(_PATH_MARKER, 1)[1])
    except (ValueError, TypeError):
        pass
    forms.add(json.dumps(user_id)[1:-1])
    forms.add(json.dumps(user_id, ensure_ascii=False)[1:-1])
    forms.add(repr(user_id)[1:-1])
    return {f for f in forms if f.strip()}


def scrub_user_id(text: str, user_ids: Iterable[str], *, delete_paths: bool = True) -> str:
    """``text`` with every occurrence of each id (any case, any of its encodings) and every delete path's id
    segment replaced by ``<user>``.

    Every occurrence, however short the id: an id of a few characters also takes out those characters
    wherever they appear, which garbles the text but keeps the promise that no id is written.
    """
    forms: set[str] = set()
    for user_id in user_ids:
        if isinstance(user_id, str) and user_id.strip():
            forms |= _id_forms(user_id)
    if forms:
        pattern = "|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True))
        text = re.sub(pattern, USER_PLACEHOLDER, text, flags=re.IGNORECASE)
    return _PATH_ID_RE.sub(_PATH_MARKER + USER_PLACEHOLDER, text) if delete_paths else text


class UserDeletion(CountingProcessor):
    """The job's processor: one event in, one Outcome out; counts retries and errors as the other jobs do."""

    # said once per process when log.id_hash_salt is unset
    warned_unkeyed = False

    def __init__(self, cfg: JobConfig, program: ServiceClient, metrics: Metrics | None = None) -> None:
        self._program = program
        self.metrics = metrics
        self._job = cfg.get_str("job.name", JOB_NAME)
        self._shape = input_shape(cfg)
        self._hash = IdHasher.from_config(cfg)
        if not self._hash.keyed and not UserDeletion.warned_unkeyed:
            UserDeletion.warned_unkeyed = True
            log_event(
                log,
                "WARNING",
                f"{ID_HASH_SALT_KEY} is not set: user ids are hashed in the logs with the built-in salt, so "
                "anyone who reads the logs can test whether a known id is in them; set a secret per "
                "deployment (README, user-delete: log.id_hash_salt)",
                job=self._job,
            )

    @classmethod
    def from_config(cls, cfg: JobConfig, metrics: Metrics | None = None) -> UserDeletion:
        program = ServiceClient.from_config(
            "program-service",
            cfg.get_str("program-service-baseUrl"),
            cfg,
            default_headers={"Content-Type": "application/json"},
        )
        return cls(cfg, program, metrics)

    def closers(self) -> list[Callable[[], Awaitable[Any]]]:
        return [self._program.close]

    async def process(self, data: dict[str, Any]) -> Outcome:
        started = time.monotonic()
        event = Event(data)
        try:
            action = event.get_str("edata.action")
            object_type = event.get_str("object.type") if self._shape.release == 8 else "User"
        except InvalidField as e:
            return self._failed(data, e, e.reason, started, None)
        if object_type.lower() != "user":
            reason = "object.type is not User"
            self._log("skipped", event, "", started, reason=reason)
            return Outcome.skipped(reason)
        allowed = self._shape.actions(record_topic())
        if action in (DELETE_ACTION, TRANSFER_ACTION) and action not in allowed and self._shape.release == 8:
            wrong = "user-delete" if action == TRANSFER_ACTION else "ownership-transfer"
            reason = f"a {action} event read from the {wrong} topic"
            self._log("skipped", event, "", started, reason=reason)
            return Outcome.skipped(reason)
        if action == TRANSFER_ACTION and action in allowed:
            return await self._transfer(data, event, started)
        return await self._delete(data, event, action, started)

    async def _delete(self, data: dict[str, Any], event: Event, action: str, started: float) -> Outcome:
        try:
            user_id = event.get_str("edata.userId")
        except InvalidField as e:
            return self._failed(data, e, e.reason, started, None)
        uid_hash = self._hash(user_id) if user_id else ""
        reason = skip_reason(action, user_id)
        if self._shape.release == 8 and reason == "not a delete-user event":
            reason = "not a delete-user or ownership-transfer event"
        if reason:
            self._log("skipped", event, uid_hash, started, reason=reason)
            return Outcome.skipped(reason)
        object_id = data.get("object", {}).get("id") if isinstance(data.get("object"), dict) else None
        ids = [user_id, *([object_id] if isinstance(object_id, str) else [])]

        def scrub(text: str) -> str:
            return scrub_user_id(text, ids)

        try:
            resp = await self._program.request(
                "DELETE",
                delete_path(user_id),
                is_transient=is_transient,
                # the id is personal data: errors and logs name the call, not the path
                label="DELETE /program/v1/user/{userId}",
                on_retry=self.on_retry,
                scrub=scrub,
            )
            result = interpret(resp)
        except TransientError as e:
            self.count("error")
            return self._failed(data, e, "retries-exhausted", started, uid_hash, event, scrub)
        except PermanentError as e:
            self.count("error")
            return self._failed(data, e, "permanent", started, uid_hash, event, scrub)
        except Exception as e:  # a bug or an unforeseen library error: failed here, where the id is known
            self.count("error")
            return self._failed(data, e, "permanent", started, uid_hash, event, scrub)
        self._log("success", event, uid_hash, started, result=result)
        return Outcome.success(detail={"result": result})

    async def _transfer(self, data: dict[str, Any], event: Event, started: float) -> Outcome:
        try:
            reason = transfer_skip_reason(event)
            from_id = event.get_str("edata.fromUserProfile.userId")
            to_id = event.get_str("edata.toUserProfile.userId")
        except InvalidField as e:
            return self._failed(data, e, e.reason, started, None, action=TRANSFER_ACTION)
        hashes = {
            "user": self._hash(from_id) if from_id else "",
            "to_user": self._hash(to_id) if to_id else "",
        }
        if reason:
            self._log("skipped", event, hashes["user"], started, reason=reason, action=TRANSFER_ACTION)
            return Outcome.skipped(reason)
        values = personal_values(data)

        def scrub(text: str) -> str:
            return scrub_user_id(text, values, delete_paths=False)

        try:
            resp = await self._program.request(
                "POST",
                TRANSFER_PATH,
                json=transfer_body(data),
                is_transient=transfer_is_transient,
                label=TRANSFER_LABEL,
                on_retry=self.on_retry,
                scrub=scrub,
            )
            result = interpret_transfer(resp)
        except TransientError as e:
            self.count("error")
            return self._failed(
                data, e, "retries-exhausted", started, hashes["user"], event, scrub, **_t(hashes)
            )
        except PermanentError as e:
            self.count("error")
            return self._failed(data, e, "permanent", started, hashes["user"], event, scrub, **_t(hashes))
        except Exception as e:  # a bug or an unforeseen library error: failed here, where the names are known
            self.count("error")
            return self._failed(data, e, "permanent", started, hashes["user"], event, scrub, **_t(hashes))
        self._log("success", event, hashes["user"], started, result=result, **_t(hashes))
        return Outcome.success(detail={"result": result})

    def _failed(
        self,
        data: dict[str, Any],
        error: Exception,
        reason: str,
        started: float,
        uid_hash: str | None,
        event: Event | None = None,
        scrub: Callable[[str], str] | None = None,
        **fields: Any,
    ) -> Outcome:
        # The failed record keeps the original event so it can be replayed: the failed topic holds personal
        # data and needs the input topic's retention and access limits (see docs). failInfo.error does not.
        # jobName is the job's own name whatever `job.name` says: replay (and the malformed records' jobName,
        # flink/operators.py) go by it, so a deployment that names its Flink job cokreat-user-delete replays
        record = failed_event(data, JOB_NAME, error, reason, scrub=scrub)
        message = exception_message(error)
        self._log(
            "failed", event, uid_hash or "", started, reason=reason, error=(scrub or _same)(message), **fields
        )
        return Outcome.failed(record, reason)

    def _log(self, outcome: str, event: Event | None, uid_hash: str, started: float, **fields: Any) -> None:
        mid = event.get("mid") if event is not None else None
        log_event(
            log,
            "INFO",
            f"user-delete {outcome}",
            job=self._job,
            mid=mid,
            user=uid_hash,
            outcome=outcome,
            duration_ms=int((time.monotonic() - started) * 1000),
            **fields,
        )


def _same(text: str) -> str:
    return text


def _t(hashes: dict[str, str]) -> dict[str, str]:
    """A transfer's log fields: its action and the receiving user's hash (``user`` is the giving one's)."""
    return {"action": TRANSFER_ACTION, "to_user": hashes["to_user"]}
