"""Request building: from what a caller passed to a validated ``ChatRequest`` and its plan.

The :class:`RequestBuilding` mixin of :class:`~multimodel._client._base.BaseClient`: a prompt
or messages (OpenAI's shapes included) and keywords become a ``ChatRequest`` (model resolved,
task tagged, input limits checked, the caller's policy applied), then a
:class:`~multimodel._core.dispatch.DispatchPlan` with the call's time limits. No I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from .._core.dispatch import AUTO, DispatchPlan, Router
from .._core.text import unencodable_field
from ..errors import InvalidRequestError, UnknownModelError
from ..providers._params import refuse_unsupported
from ..tracking.quality import TASK_TAG
from ..types import ChatRequest, Message
from ..types._request import prompt_request
from .params import REQUEST_FIELDS, split_params

if TYPE_CHECKING:
    from ..providers.base import Endpoint, ProviderAdapter
    from ..security._rules import Policy
    from ..security.limits import InputLimits
    from ..security.policy import PolicySet

__all__ = ["DEFAULT_DEADLINE_FACTOR", "MessageInput", "RequestBuilding", "RequestInput"]

DEFAULT_DEADLINE_FACTOR = 2.0
"""Without a ``deadline``, a call may take this many times its ``timeout``: one full attempt
and room for retries, back-offs and waits, never minutes more."""
_new_object = object.__new__

MessageInput = Message | Mapping[str, Any] | BaseModel
"""One message: a ``Message``, a dict (OpenAI's shapes included), or a message object the
OpenAI-shaped surface or the OpenAI SDK returned."""

RequestInput = str | Sequence[MessageInput]
"""A prompt string, or a list of messages: ``Message`` objects, dicts (OpenAI's shapes
included), or message objects the OpenAI-shaped surface or the OpenAI SDK returned."""

_REQUEST_FIELDS = REQUEST_FIELDS


class RequestBuilding:
    """Validation and planning of a call (a mixin of ``BaseClient``, which sets these)."""

    _closed: bool
    _router: Router
    _timeout: float
    _deadline: float | None
    _refuse_params: bool  # unsupported_params="error"
    _adapters: dict[str, ProviderAdapter]
    _classify: Callable[[ChatRequest], str | None] | None
    _check_request: Callable[[ChatRequest, InputLimits], None]
    limits: InputLimits
    policies: PolicySet | None

    if TYPE_CHECKING:

        def _check_open(self) -> None: ...

    def _build_request(
        self, prompt: RequestInput | ChatRequest, model: str | None, params: Mapping[str, Any]
    ) -> ChatRequest:
        task = None
        if "task" in params:
            params = dict(params)
            task = params.pop("task")
        request = self._build_plain(prompt, model, params)
        if task is not None or self._classify is not None:
            request = self._with_task(request, task)
        return request

    def _with_task(self, request: ChatRequest, task: object) -> ChatRequest:
        """The request with its task as a ``task:<name>`` tag: ``task=``, else (when the request
        has no task tag) the classifier's answer."""
        if task is None:
            if request.tags and any(t.startswith(TASK_TAG) for t in request.tags):
                return request
            assert self._classify is not None
            task = self._classify(request)
            if task is None:
                return request
        if not isinstance(task, str) or not task or len(task) > 100:
            raise InvalidRequestError(
                f"task must be a non-empty string of at most 100 characters, got {task!r}",
                field="task",
            )
        tags = [t for t in request.tags or () if not t.startswith(TASK_TAG)]
        return request.model_copy(update={"tags": [*tags, TASK_TAG + task]})

    def _build_plain(
        self, prompt: RequestInput | ChatRequest, model: str | None, params: Mapping[str, Any]
    ) -> ChatRequest:
        if isinstance(prompt, ChatRequest):
            request = prompt
            if model is not None or params:
                request = request.model_copy(update={"model": model or request.model, **params})
        else:
            params = dict(params)
            system = params.pop("system", None)
            if not _REQUEST_FIELDS.issuperset(params):
                params = split_params(params)  # OpenAI's parameters; a typo is an error
            messages: list[Any] | None = None  # a prompt string's: built if validated
            if isinstance(prompt, str):
                if not prompt:
                    raise InvalidRequestError("the prompt is empty", field="messages")
            elif isinstance(prompt, Sequence):
                messages = list(prompt)
                if not messages:
                    raise InvalidRequestError(
                        "messages is empty: pass a prompt string or at least one message",
                        field="messages",
                    )
                # OpenAI's shapes are converted by ChatRequest (plain dicts cost a check)
            else:
                raise InvalidRequestError(
                    f"expected a prompt string or a list of messages, got {type(prompt).__name__}",
                    field="messages",
                )
            # A prompt string with scalar parameters (the common call) is built without the
            # validators when every value is exactly of its field's type and in bounds.
            fast = (
                prompt_request(prompt, self._resolve_model(model), params)
                if system is None and type(prompt) is str
                else None
            )
            if fast is not None:
                request = fast
            else:
                if messages is None:
                    messages = [{"role": "user", "content": prompt}]
                if system is not None:
                    messages.insert(0, {"role": "system", "content": system})
                try:
                    request = ChatRequest(
                        messages=messages, model=self._resolve_model(model), **params
                    )
                except ValidationError as exc:
                    raise _invalid(exc) from None
        # A dict read: a model's attribute read passes BaseModel's __getattr__ hook.
        model = request.__dict__["model"]
        if model not in self._router.groups and model != AUTO:
            raise UnknownModelError(model, [*self._router.groups, AUTO])
        bad = unencodable_field(request)
        if bad is not None:
            bad = bad.encode("utf-8", "backslashreplace").decode()  # a key may be the culprit
            raise InvalidRequestError(
                f"{bad} is not valid Unicode text (it holds a lone surrogate such as '\\ud800', "
                "which cannot be encoded as UTF-8 and sent); fix or re-decode the text",
                field=bad,
            )
        return request

    def _resolve_model(self, model: str | None) -> str:
        if model is not None:
            return model
        if len(self._router.groups) == 1:
            return next(iter(self._router.groups))
        raise InvalidRequestError(
            f"model is required when several are configured: {', '.join(self._router.groups)}",
            field="model",
        )

    def _batch_parts(
        self, item: Any, model: str | None, params: Mapping[str, Any]
    ) -> tuple[Any, str | None, Mapping[str, Any]]:
        """A batch item as ``(prompt, model, params)``: a dict item's own keys win."""
        if isinstance(item, Mapping):
            item = dict(item)
            prompt = item.pop("prompt", None)
            messages = item.pop("messages", None)
            item_model = item.pop("model", model)
            return (messages if messages is not None else prompt), item_model, {**params, **item}
        return item, model, params

    def _prepare(
        self,
        prompt: RequestInput | ChatRequest,
        model: str | None,
        params: Mapping[str, Any],
        policy: str | None = None,
    ) -> tuple[ChatRequest, Policy | None]:
        """Validate, check input limits, resolve the caller's policy and apply its hard rules."""
        if self._closed:
            self._check_open()
        request = self._build_request(prompt, model, params)
        self._check_request(request, self.limits)
        # _policy_of's own answer without policies or a named one (the common call), uncalled
        resolved = (
            None
            if self.policies is None and policy is None
            else self._policy_of(request.user, policy)
        )
        if resolved is not None:
            from ..security.policy import enforce_request

            request = enforce_request(resolved, request)
        return request, resolved

    def _policy_of(self, user: str | None, policy: str | None) -> Policy | None:
        """The caller's policy: ``policy`` by name, else the user's (``None``: no policies)."""
        if self.policies is not None:
            return self.policies.resolve(user, policy=policy)
        if policy is not None:
            raise InvalidRequestError(
                f"policy={policy!r} given, but the client has no policies", field="policy"
            )
        return None

    def _plan(
        self,
        request: ChatRequest,
        timeout: float | None,
        policy: Policy | None,
        *,
        stream: bool = False,
        prefer: str | None = None,
        left: float | None = None,
    ) -> DispatchPlan:
        """The dispatch plan of one routed run (``left``: the seconds left of a call that
        began earlier, such as a structured answer's repair: the run gets that, not a fresh
        deadline)."""
        timeout = timeout or self._timeout
        deadline = self._deadline
        if self._refuse_params:  # opt-in: the default call pays nothing
            refuse_unsupported(request, self._reachable(request.model))
        # Allocated and initialised as two calls, as Router.plan does: calling the class would
        # gather the keywords into a dict for __init__ (once per call).
        plan = _new_object(DispatchPlan)
        plan.__init__(  # type: ignore[misc]
            self._router,
            request,
            timeout=timeout,
            # No deadline given: the default bounds retries, back-offs and waits for a
            # recovery, but not a stream that is delivering (its idle limit guards that).
            deadline=left
            if left is not None
            else deadline
            if deadline is not None
            else DEFAULT_DEADLINE_FACTOR * timeout,
            stream=stream,
            policy=policy,
            body_deadline=deadline is not None,
            prefer=prefer,
        )
        return plan

    def _reachable(self, model: str) -> list[tuple[Endpoint, ProviderAdapter]]:
        """Every deployment a call of ``model`` could be sent to: its group's, its fallback
        groups' and their context fallbacks' (``auto``: every deployment)."""
        router = self._router
        if model == AUTO:
            endpoints = list(router.endpoints)
        else:
            groups = [model, *router.fallbacks.get(model, ())]
            for group in groups:  # grows while it is walked: context fallbacks of fallbacks
                extra = router.context_fallbacks.get(group)
                if extra is not None and extra not in groups:
                    groups.append(extra)
            if AUTO in groups:
                endpoints = list(router.endpoints)
            else:
                endpoints = [ep for group in groups for ep in router.groups[group]]
        return [(ep, self._adapters[ep.name]) for ep in endpoints]


def _invalid(exc: ValidationError) -> InvalidRequestError:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"] if not str(p).startswith(("function-", "tagged-")))
    msg = err["msg"]
    extra = f" (and {exc.error_count() - 1} more problems)" if exc.error_count() > 1 else ""
    return InvalidRequestError(
        f"invalid request: {loc or 'request'}: {msg}{extra}", field=loc or None
    )
