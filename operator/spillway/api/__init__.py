"""The resource: pydantic models of the ScalableService spec and status, the rules they obey,
their units, and the CRD generated from them. Pure: no I/O."""

from spillway.api.errors import SpecError, parse_spec
from spillway.api.spec import ScalableServiceSpec
from spillway.api.status import ScalableServiceStatus

__all__ = ["ScalableServiceSpec", "ScalableServiceStatus", "SpecError", "parse_spec"]
