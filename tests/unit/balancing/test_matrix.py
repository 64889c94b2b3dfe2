"""The support matrix: its Markdown, and that each Gateway-family provider's SUPPORT says what
its render does."""

from __future__ import annotations

from types import ModuleType

import pytest

from spillway.resources.balancing import envoygateway, gateway, istio, matrix, nginx
from spillway.resources.balancing.base import Support
from tests.unit.balancing.gateway_cases import POOLS, plan

MODULES = {"GatewayAPI": gateway, "EnvoyGateway": envoygateway, "Istio": istio, "NginxGatewayFabric": nginx}


def test_markdown_has_a_row_per_provider_and_says_not_honoured_for_what_is_missing() -> None:
    supports = [
        Support("Alpha", {"RoundRobin": "rr", "Weighted": "w | x"}, {"Cookie": "c"}, notes="first\nsecond"),
        Support("Beta", {}, {"ClientIP": "ip"}),
    ]
    assert matrix.markdown(supports) == (
        "| Provider | RoundRobin | Random | LeastConnection | Weighted | ConsistentHash | ClientIP affinity "
        "| Cookie affinity | Notes |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n"
        "| Alpha | rr | not honoured | not honoured | w \\| x | not honoured | not honoured | c | first second |\n"
        "| Beta | not honoured | not honoured | not honoured | not honoured | not honoured | ip | not honoured |  |\n"
    )


def test_markdown_leaves_out_the_notes_column_when_no_provider_has_notes() -> None:
    table = matrix.markdown([Support("Alpha", {"Random": "r"}, {})])
    assert table.splitlines()[0].endswith("| Cookie affinity |")
    assert table.splitlines()[2] == ("| Alpha | not honoured | r | not honoured | not honoured | not honoured "
                                     "| not honoured | not honoured |")


def test_every_gateway_family_provider_appears_in_the_matrix() -> None:
    table = matrix.markdown([m.SUPPORT for m in MODULES.values()])
    assert [line.split(" | ")[0].removeprefix("| ") for line in table.splitlines()[2:]] == list(MODULES)
    for module in MODULES.values():
        assert set(module.SUPPORT.algorithms) <= set(matrix.ALGORITHMS)
        assert set(module.SUPPORT.affinities) <= set(matrix.AFFINITIES)


@pytest.mark.parametrize("provider", MODULES)
@pytest.mark.parametrize("algorithm", matrix.ALGORITHMS)
def test_support_says_which_algorithms_render_honoured(provider: str, algorithm: str) -> None:
    module: ModuleType = MODULES[provider]
    p = plan(module, provider, POOLS if algorithm == "Weighted" else None, algorithm=algorithm)
    assert p.verdict.honoured == bool(module.SUPPORT.algorithms.get(algorithm)), p.verdict.message


@pytest.mark.parametrize("provider", MODULES)
@pytest.mark.parametrize("affinity", matrix.AFFINITIES)
def test_support_says_which_affinities_render_honoured(provider: str, affinity: str) -> None:
    module: ModuleType = MODULES[provider]
    p = plan(module, provider, affinity={"type": affinity})
    assert p.verdict.honoured == bool(module.SUPPORT.affinities.get(affinity)), p.verdict.message
