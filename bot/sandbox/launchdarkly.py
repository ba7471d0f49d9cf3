"""A fake of the LaunchDarkly REST API v2 flag endpoints, strict where the real one is.

``GET /api/v2/flags/{project}/{flag}[?env=a&env=b]`` and ``PATCH`` the same path with a
semantic patch. The PATCH checks what LaunchDarkly checks: the access token (401), the
content type (without ``domain-model=launchdarkly.semanticpatch`` the body is read as a
JSON Patch array and an object fails), ``environmentKey``, each instruction's kind and
fields, ``rolloutWeights`` keyed by variation ``_id`` summing to 100000; it applies all
instructions or none, honours ``?dryRun=true``, increments versions, and can be told
that the environment requires approval (405). Errors are ``{code, message, id}``.

Tests change a flag "outside the bot" (as in the LaunchDarkly UI) with :meth:`set_rollout`,
:meth:`set_on` or :meth:`edit`.

It also serves the server SDK's streaming endpoint (``GET /all``, Server-Sent Events,
``Authorization: <SDK key>``): a ``put`` with every flag of the key's environment in the
SDK's representation, then a ``patch`` for each change, after ``stream_delay`` seconds
(or not until :meth:`pause_stream` is undone).
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import uuid
from collections.abc import Callable
from typing import Any

from aiohttp import web

from bot.sandbox.base import FakeServer

SANDBOX_LD_TOKEN = "sandbox-ld-api-token"
SANDBOX_LD_PROJECT = "cio-launch"
SANDBOX_LD_ENVIRONMENT = "production"
SANDBOX_LD_FLAG = "use-customerio"
SANDBOX_LD_SDK_KEY = "sandbox-ld-sdk-key"
SEMANTIC_PATCH = "domain-model=launchdarkly.semanticpatch"
KNOWN_API_VERSIONS = {"20240415", "20220603", "20210729", "20191212", "20160426", "beta"}
FULL = 100_000

_ids = itertools.count(1)


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"code": code, "message": message, "id": f"req-{next(_ids)}"}, status=status)


class FakeLaunchDarkly(FakeServer):
    name = "launchdarkly"

    def __init__(self, *, token: str = SANDBOX_LD_TOKEN) -> None:
        self.tokens = {token}
        #: (project, flag key) -> flag JSON as the API answers it (all environments)
        self.flags: dict[tuple[str, str], dict[str, Any]] = {}
        self.approval_required: set[tuple[str, str]] = set()  # (project, environment)
        #: seconds the PATCH answer is held back *after* the change is applied
        self.answer_delay = 0.0
        #: called after each applied PATCH: someone else changing the flag right after the bot
        self.after_patch: list[Callable[[], None]] = []
        #: SDK key -> (project, environment) for the streaming endpoint
        self.sdk_keys: dict[str, tuple[str, str]] = {SANDBOX_LD_SDK_KEY: (SANDBOX_LD_PROJECT, SANDBOX_LD_ENVIRONMENT)}
        self.stream_delay = 0.0
        self._stream_flowing = asyncio.Event()
        self._stream_flowing.set()
        self._streams: list[tuple[str, str, asyncio.Queue[tuple[str, Any] | None]]] = []
        super().__init__()
        self.add_flag(SANDBOX_LD_PROJECT, SANDBOX_LD_FLAG, environments=(SANDBOX_LD_ENVIRONMENT, "staging"))

    def setup_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/api/v2/flags/{project}/{flag}", self._get)
        router.add_patch("/api/v2/flags/{project}/{flag}", self._patch)
        router.add_get("/all", self._stream)

    async def stop(self) -> None:
        self._stream_flowing.set()
        for _, _, queue in list(self._streams):
            queue.put_nowait(None)
        await super().stop()

    # -- state for tests ----------------------------------------------------------------------
    def add_flag(self, project: str, key: str, *, environments: tuple[str, ...] = (SANDBOX_LD_ENVIRONMENT,),
                 variations: tuple[Any, ...] = (True, False)) -> dict[str, Any]:
        flag = {
            "key": key,
            "name": key.replace("-", " ").title(),
            "kind": "boolean" if set(variations) == {True, False} else "multivariate",
            "_version": 1,
            "variations": [
                {"_id": str(uuid.uuid4()), "value": v,
                 "name": {True: "Customer.io", False: "Old path"}.get(v, str(v))}
                for v in variations
            ],
            "environments": {},
        }
        off = variations.index(False) if False in variations else 0
        for env in environments:
            flag["environments"][env] = {
                "_environmentName": env.title(),
                "on": False,
                "offVariation": off,
                "salt": uuid.uuid4().hex,
                "version": 1,
                "fallthrough": {"variation": off},
                "targets": [],
                "contextTargets": [],
                "rules": [],
                "prerequisites": [],
                "lastModified": 0,
            }
        self.flags[(project, key)] = flag
        return flag

    def flag(self, key: str = SANDBOX_LD_FLAG, project: str = SANDBOX_LD_PROJECT) -> dict[str, Any]:
        return self.flags[(project, key)]

    def env(self, key: str = SANDBOX_LD_FLAG, environment: str = SANDBOX_LD_ENVIRONMENT,
            project: str = SANDBOX_LD_PROJECT) -> dict[str, Any]:
        return self.flag(key, project)["environments"][environment]

    def served_weight(self, key: str = SANDBOX_LD_FLAG, environment: str = SANDBOX_LD_ENVIRONMENT) -> int:
        """Thousandths of a percent served ``true`` right now."""
        flag = self.flag(key)
        env = self.env(key, environment)
        values = [v["value"] for v in flag["variations"]]
        if not env["on"]:
            return FULL if values[env["offVariation"]] is True else 0
        ft = env["fallthrough"]
        if "variation" in ft:
            return FULL if values[ft["variation"]] is True else 0
        return sum(v["weight"] for v in ft["rollout"]["variations"] if values[v["variation"]] is True)

    def require_approval(self, environment: str = SANDBOX_LD_ENVIRONMENT, project: str = SANDBOX_LD_PROJECT,
                         required: bool = True) -> None:
        (self.approval_required.add if required else self.approval_required.discard)((project, environment))

    def edit(self, change: Callable[[dict[str, Any], dict[str, Any]], None], *, key: str = SANDBOX_LD_FLAG,
             environment: str = SANDBOX_LD_ENVIRONMENT) -> None:
        """Change the flag as someone in the LaunchDarkly UI would: ``change(flag, env)``."""
        flag = self.flag(key)
        env = flag["environments"][environment]
        change(flag, env)
        flag["_version"] += 1
        env["version"] += 1
        self._publish(self._project_of(flag), key, environment)

    def set_rollout(self, percent: float, *, key: str = SANDBOX_LD_FLAG,
                    environment: str = SANDBOX_LD_ENVIRONMENT, on: bool = True) -> None:
        def change(flag: dict[str, Any], env: dict[str, Any]) -> None:
            true_weight = round(percent * 1000)
            env["on"] = on
            env["fallthrough"] = {"rollout": {
                "variations": [
                    {"variation": i, "weight": true_weight if v["value"] is True else FULL - true_weight
                     if v["value"] is False else 0}
                    for i, v in enumerate(flag["variations"])
                ],
                "bucketBy": "key", "contextKind": "user",
            }}
        self.edit(change, key=key, environment=environment)

    def set_on(self, on: bool, *, key: str = SANDBOX_LD_FLAG, environment: str = SANDBOX_LD_ENVIRONMENT) -> None:
        self.edit(lambda flag, env: env.__setitem__("on", on), key=key, environment=environment)

    # -- API ----------------------------------------------------------------------------------
    def _auth(self, request: web.Request) -> web.Response | None:
        token = request.headers.get("Authorization", "")
        if token not in self.tokens:
            return _error(401, "unauthorized", "Invalid access token")
        version = request.headers.get("LD-API-Version")
        if version is not None and version not in KNOWN_API_VERSIONS:
            return _error(400, "invalid_request", f"Invalid API version: {version}")
        return None

    def _find(self, request: web.Request) -> dict[str, Any] | web.Response:
        key = (request.match_info["project"], request.match_info["flag"])
        if key not in self.flags:
            return _error(404, "not_found", "Unknown resource")
        return self.flags[key]

    @staticmethod
    def _view(flag: dict[str, Any], envs: list[str]) -> dict[str, Any]:
        out = copy.deepcopy(flag)
        if envs:
            out["environments"] = {k: v for k, v in out["environments"].items() if k in envs}
        return out

    async def _get(self, request: web.Request) -> web.Response:
        if (denied := self._auth(request)) is not None:
            return denied
        flag = self._find(request)
        if isinstance(flag, web.Response):
            return flag
        return web.json_response(self._view(flag, request.query.getall("env", [])))

    async def _patch(self, request: web.Request) -> web.Response:
        if (denied := self._auth(request)) is not None:
            return denied
        flag = self._find(request)
        if isinstance(flag, web.Response):
            return flag
        try:
            body = json.loads(await request.read() or b"null")
        except ValueError:
            return _error(400, "invalid_request", "Invalid JSON body")
        if SEMANTIC_PATCH not in request.headers.get("Content-Type", ""):
            if not isinstance(body, list):
                return _error(400, "invalid_request",
                              "Invalid JSON patch: expected an array of operations "
                              "(for a semantic patch, set the content type's domain-model)")
            return _error(400, "invalid_request", "JSON Patch is not supported by this sandbox")
        project = request.match_info["project"]
        result = self._apply(flag, body)
        if isinstance(result, web.Response):
            return result
        env_key, updated = result
        if (project, env_key) in self.approval_required:
            return _error(405, "method_not_allowed",
                          "This environment requires approvals: create an approval request for this change")
        if request.query.get("dryRun") == "true":
            return web.json_response(self._view(updated, [env_key]))
        updated["_version"] += 1
        updated["environments"][env_key]["version"] += 1
        self.flags[(project, request.match_info["flag"])] = updated
        self._publish(project, request.match_info["flag"], env_key)
        answer = self._view(updated, [])
        for hook in list(self.after_patch):
            hook()
        if self.answer_delay:
            await asyncio.sleep(self.answer_delay)
        return web.json_response(answer)

    def _apply(self, flag: dict[str, Any], body: Any) -> tuple[str, dict[str, Any]] | web.Response:
        """Validate and apply to a copy: all instructions or none."""
        if not isinstance(body, dict):
            return _error(400, "invalid_request", "Semantic patch body must be an object")
        env_key = body.get("environmentKey")
        instructions = body.get("instructions")
        if not isinstance(env_key, str) or not env_key:
            return _error(400, "invalid_request", "environmentKey is required for this instruction")
        if env_key not in flag["environments"]:
            return _error(400, "invalid_request", f"Unknown environment key: {env_key}")
        if "comment" in body and not isinstance(body["comment"], str):
            return _error(400, "invalid_request", "comment must be a string")
        if not isinstance(instructions, list) or not instructions:
            return _error(400, "invalid_request", "instructions must be a non-empty array")
        updated = copy.deepcopy(flag)
        env = updated["environments"][env_key]
        ids = {v["_id"]: i for i, v in enumerate(updated["variations"])}
        for n, ins in enumerate(instructions):
            if not isinstance(ins, dict) or not isinstance(ins.get("kind"), str):
                return _error(400, "invalid_request", f"instruction {n} has no kind")
            kind = ins["kind"]
            if kind == "turnFlagOn":
                env["on"] = True
            elif kind == "turnFlagOff":
                env["on"] = False
            elif kind == "updateFallthroughVariationOrRollout":
                problem = self._fallthrough(env, ins, ids)
                if problem:
                    return _error(400, "invalid_request", problem)
            else:
                return _error(400, "invalid_request", f"Unknown instruction kind: {kind}")
        return env_key, updated

    @staticmethod
    def _fallthrough(env: dict[str, Any], ins: dict[str, Any], ids: dict[str, int]) -> str | None:
        variation_id = ins.get("variationId")
        weights = ins.get("rolloutWeights")
        if (variation_id is None) == (weights is None):
            return "updateFallthroughVariationOrRollout needs exactly one of variationId or rolloutWeights"
        if variation_id is not None:
            if variation_id not in ids:
                return f"Unknown variation ID: {variation_id}"
            env["fallthrough"] = {"variation": ids[variation_id]}
            return None
        if not isinstance(weights, dict) or not weights:
            return "rolloutWeights must be an object of variation IDs to weights"
        for vid, weight in weights.items():
            if vid not in ids:
                return f"Unknown variation ID in rolloutWeights: {vid}"
            if not isinstance(weight, int) or isinstance(weight, bool) or weight < 0:
                return "rolloutWeights values must be non-negative integers"
        if sum(weights.values()) != FULL:
            return f"rolloutWeights must sum to 100000, got {sum(weights.values())}"
        for field in ("rolloutBucketBy", "rolloutContextKind"):
            if field in ins and not isinstance(ins[field], str):
                return f"{field} must be a string"
        rollout: dict[str, Any] = {
            "variations": [{"variation": i, "weight": int(weights.get(vid, 0))}
                           for vid, i in sorted(ids.items(), key=lambda item: item[1])],
        }
        if ins.get("rolloutBucketBy"):
            rollout["bucketBy"] = ins["rolloutBucketBy"]
        rollout["contextKind"] = ins.get("rolloutContextKind") or "user"
        env["fallthrough"] = {"rollout": rollout}
        return None

    # -- the SDK stream ----------------------------------------------------------------------
    def _project_of(self, flag: dict[str, Any]) -> str:
        return next(p for (p, _), f in self.flags.items() if f is flag)

    @staticmethod
    def sdk_flag(flag: dict[str, Any], environment: str) -> dict[str, Any]:
        """The flag as the streaming endpoint sends it to server SDKs."""
        env = flag["environments"][environment]
        return {
            "key": flag["key"], "version": env["version"], "on": env["on"], "salt": env["salt"],
            "variations": [v["value"] for v in flag["variations"]], "offVariation": env["offVariation"],
            "fallthrough": copy.deepcopy(env["fallthrough"]), "targets": env.get("targets", []),
            "contextTargets": env.get("contextTargets", []), "rules": env.get("rules", []),
            "prerequisites": env.get("prerequisites", []), "trackEvents": False, "deleted": False,
        }

    def pause_stream(self, paused: bool = True) -> None:
        """Hold back (or release) the stream's updates, as a lagging LaunchDarkly stream would."""
        (self._stream_flowing.clear if paused else self._stream_flowing.set)()

    def _publish(self, project: str, key: str, environment: str) -> None:
        data = {"path": f"/flags/{key}", "data": self.sdk_flag(self.flags[(project, key)], environment)}
        for p, e, queue in list(self._streams):
            if (p, e) == (project, environment):
                queue.put_nowait(("patch", data))

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        where = self.sdk_keys.get(request.headers.get("Authorization", ""))
        if where is None:
            return _error(401, "unauthorized", "Invalid SDK key")
        project, environment = where
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        flags = {k: self.sdk_flag(f, environment) for (p, k), f in self.flags.items()
                 if p == project and environment in f["environments"]}
        queue: asyncio.Queue[tuple[str, Any] | None] = asyncio.Queue()
        self._streams.append((project, environment, queue))
        try:
            await response.write(_sse("put", {"path": "/", "data": {"flags": flags, "segments": {}}}))
            while (item := await queue.get()) is not None:
                if self.stream_delay:
                    await asyncio.sleep(self.stream_delay)
                await self._stream_flowing.wait()
                await response.write(_sse(*item))
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self._streams.remove((project, environment, queue))
        return response


def _sse(event: str, data: Any) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()
