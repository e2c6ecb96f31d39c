from cardops.settlement import service
from tests.settlement.conftest import DAY, World


def test_smoke(world: World) -> None:
    world.journal("purchase", 10000)
    world.journal("purchase", 20000, card_type="credit", terminal=world.t_city)
    r = service.settle_day(session=world.db, actor=world.finance, business_date=DAY)
    print(r.computed)
    assert r.window.state == "settled"
