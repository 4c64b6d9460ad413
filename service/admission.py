"""Admission of a planned generation: the checks that need the validated request.

The interceptor has already authenticated the caller; here, before any Bedrock call, the
key's model allowlist is checked and the call's record learns what was asked (model, n,
size, user). Every face calls `admit` between planning and running, so none can skip it.
"""

from __future__ import annotations

from service.auth import check_model
from service.interceptors import current_call
from service.pipeline import Plan


class Admission:
    async def admit(self, plan: Plan) -> None:
        """Raises the ApiError the caller gets when the generation may not run."""
        record = current_call()
        if record is None:  # outside an RPC (direct pipeline use): nothing to enforce
            return
        model_id = plan.model.spec.model_id
        record.model = model_id
        record.n = plan.common.n
        record.size = "{}x{}".format(*plan.size)
        record.user = plan.common.user
        record.prompt = plan.common.prompt
        check_model(record.key, model_id)
