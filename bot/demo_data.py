"""The demo at the case's scale: 18 stores, 62 staff, a few hundred SKUs and a day of orders in every state.

Deterministic (a seeded random generator), so every `orderbot demo` tells the same story. The few hand-written
orders of bot/demo_seed.py stay as they are; this adds the crowd around them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from domain.users import User

STORES = {
    "SH01": "上海浦东店", "SH02": "上海徐汇店", "SH03": "上海闵行店", "SH04": "上海嘉定店", "SH05": "上海宝山店",
    "SH06": "上海松江店", "HZ01": "杭州西湖店", "HZ02": "杭州滨江店", "HZ03": "杭州萧山店", "SZ01": "苏州园区店",
    "SZ02": "苏州吴中店", "NJ01": "南京江宁店", "NJ02": "南京鼓楼店", "WX01": "无锡新吴店", "NB01": "宁波鄞州店",
    "JX01": "嘉兴南湖店", "SX01": "绍兴柯桥店", "CZ01": "常州武进店",
}
# the store register: each store's sender address and phone, printed on its e-waybills
STORE_ADDRESSES = {
    "SH01": ("上海市浦东新区川沙路1688号", "021-58001001"), "SH02": ("上海市徐汇区漕溪北路398号", "021-64002002"),
    "SH03": ("上海市闵行区七莘路3055号", "021-64003003"), "SH04": ("上海市嘉定区城中路138号", "021-59004004"),
    "SH05": ("上海市宝山区牡丹江路1569号", "021-56005005"), "SH06": ("上海市松江区中山中路188号", "021-57006006"),
    "HZ01": ("浙江省杭州市西湖区文三路259号", "0571-88001001"), "HZ02": ("浙江省杭州市滨江区江南大道588号", "0571-87002002"),
    "HZ03": ("浙江省杭州市萧山区市心中路819号", "0571-82003003"), "SZ01": ("江苏省苏州市吴中区星湖街328号", "0512-62001001"),
    "SZ02": ("江苏省苏州市吴中区东吴北路98号", "0512-65002002"), "NJ01": ("江苏省南京市江宁区双龙大道1118号", "025-52001001"),
    "NJ02": ("江苏省南京市鼓楼区中山北路105号", "025-83002002"), "WX01": ("江苏省无锡市新吴区长江路16号", "0510-85001001"),
    "NB01": ("浙江省宁波市鄞州区天童南路588号", "0574-88001001"), "JX01": ("浙江省嘉兴市南湖区中山东路1288号", "0573-82001001"),
    "SX01": ("浙江省绍兴市柯桥区笛扬路1000号", "0575-84001001"), "CZ01": ("江苏省常州市武进区人民中路158号", "0519-86001001"),
}
STORY_STORES = ("SH01", "HZ01")  # wh1 and wh2 play these; the crowd's orders go elsewhere, so their chats stay readable
CROWD_STORES = tuple(s for s in STORES if s not in STORY_STORES)

_SURNAMES = "张王李赵刘陈杨黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶阎"
_GIVEN = ("伟", "芳", "娜", "敏", "静", "强", "磊", "军", "洋", "勇", "艳", "杰", "涛", "明", "超", "秀英", "华",
          "鹏", "辉", "丹", "婷", "浩", "宇", "晨", "欣", "建国", "志强", "海燕", "俊", "斌", "琳", "雪", "博", "凯")

STORY_USERS = (
    User("limin", "李敏", frozenset({"manager"})),
    User("sup1", "王芳", frozenset({"supervisor"})),
    User("sup2", "陈刚", frozenset({"supervisor"})),
    User("wh1", "王强", frozenset({"warehouse"}), "SH01"),
    User("wh2", "赵磊", frozenset({"warehouse"}), "HZ01"),
    User("cs1", "刘洋", frozenset({"service"})),
    User("buyer1", "孙丽", frozenset({"purchasing"})),
    User("fin1", "周静", frozenset({"finance"})),
)
# besides the story's eight: (userid prefix, role, how many)
_OFFICE = (("mgr", "manager", 1), ("sup", "supervisor", 4), ("cs", "service", 5), ("buyer", "purchasing", 2),
           ("fin", "finance", 2))
_BIG_STORES = ("SH03", "SH04", "HZ02", "SZ01", "NJ01", "WX01", "NB01", "SX01")  # a third warehouse hand


def _staff() -> tuple[User, ...]:
    rng = random.Random(62)
    taken = {u.name for u in STORY_USERS}

    def name() -> str:
        while True:
            candidate = rng.choice(_SURNAMES) + rng.choice(_GIVEN)
            if candidate not in taken:
                taken.add(candidate)
                return candidate

    users = list(STORY_USERS)
    for prefix, role, count in _OFFICE:
        first = sum(1 for u in STORY_USERS if role in u.roles) + 1
        users += [User(f"{prefix}{first + i}", name(), frozenset({role})) for i in range(count)]
    for store in STORES:
        if store in STORY_STORES:
            continue
        hands = 3 if store in _BIG_STORES else 2
        users += [User(f"wh_{store.lower()}_{i}", name(), frozenset({"warehouse"}), store) for i in range(1, hands + 1)]
    return tuple(users)


USERS = _staff()

_PARTS = (  # code prefix, name, unit price in fen
    ("BP", "刹车片（前轮）", 28_000), ("BR", "刹车片（后轮）", 22_000), ("BD", "刹车盘", 46_000),
    ("OF", "机油滤清器", 4_500), ("AF", "空气滤清器", 6_500), ("CF", "空调滤清器", 5_800),
    ("FF", "燃油滤清器", 9_800), ("SP", "铱金火花塞", 6_800), ("WB", "雨刮片", 8_500),
    ("BT", "蓄电池 60Ah", 52_000), ("TB", "正时皮带套装", 88_000), ("SA", "前减震器", 68_000),
)
_MODELS = ("大众朗逸", "丰田卡罗拉", "本田雅阁", "日产轩逸", "别克英朗", "大众帕萨特", "宝马3系", "奥迪A4L", "奔驰C级",
           "丰田凯美瑞", "本田思域", "大众迈腾", "别克君威", "马自达6", "福特福克斯", "雪佛兰科鲁兹", "现代伊兰特",
           "起亚K5", "吉利帝豪", "长安逸动", "比亚迪秦", "荣威i5", "哈弗H6", "大众途观L", "丰田RAV4")
STORY_SKUS = {  # sku -> (name, unit price in fen); the hand-written orders use these
    "BP-001": ("刹车片（前轮）", 28_000), "OF-002": ("机油滤清器", 4_500),
    "SP-003": ("铱金火花塞", 6_800), "WB-004": ("雨刮片", 8_500),
}
SKUS = {
    **STORY_SKUS,
    **{f"{code}-{101 + m}": (f"{part} {model}", price) for code, part, price in _PARTS
       for m, model in enumerate(_MODELS)},
}
SURGE_SKU = "BP-001"  # the brake pads of the surge scenario; the crowd's orders leave it alone

CUSTOMERS = (
    ("C-4S-0001", "宝诚4S店", "13800011001"), ("C-4S-0002", "永达4S店", "13800011002"),
    ("C-4S-0003", "元通4S店", "13800011003"), ("C-4S-0004", "东昌汽车", "13800011004"),
    ("C-RP-0005", "驰骋汽修厂", "13900011005"), ("C-RP-0006", "途虎工场店", "13900011006"),
    ("C-RP-0007", "小拇指汽修", "13900011007"), ("C-RP-0008", "精典汽车服务", "13900011008"),
    ("C-DY-0009", "张先生", "13600011009"), ("C-DY-0010", "李女士", "13600011010"),
    ("C-DY-0011", "王先生", "13600011011"), ("C-DY-0012", "陈女士", "13600011012"),
)
_STREETS = {"SH": ("上海市", ("张杨路", "漕溪北路", "莘庄路", "嘉定城中路", "牡丹江路", "人民北路")),
            "HZ": ("杭州市", ("文三路", "江南大道", "市心中路")), "SZ": ("苏州市", ("星湖街", "东吴北路")),
            "NJ": ("南京市", ("双龙大道", "中山路")), "WX": ("无锡市", ("长江路",)), "NB": ("宁波市", ("天童南路",)),
            "JX": ("嘉兴市", ("中山东路",)), "SX": ("绍兴市", ("笛扬路",)), "CZ": ("常州市", ("延政中路",))}

# The end state of each crowd order and how many: every state of the lifecycle, a day's worth.
CROWD = (
    ("pending_payment", 15), ("split", 40), ("picking", 35), ("quality_check", 25), ("packed", 35),
    ("shipped", 30), ("in_transit", 30), ("delivered", 35), ("delivery_exception", 4), ("completed", 40),
    ("cancelled", 11),
)
# the triggers that take a paid, allocated order (state split) to each end state
PATHS: dict[str, tuple[str, ...]] = {
    "pending_payment": (), "split": (), "picking": ("pick",), "quality_check": ("pick", "check"),
    "packed": ("pick", "check", "pack"), "shipped": ("pick", "check", "pack", "ship"),
    "in_transit": ("pick", "check", "pack", "ship", "pick_up"),
    "delivered": ("pick", "check", "pack", "ship", "pick_up", "deliver"),
    "delivery_exception": ("pick", "check", "pack", "ship", "pick_up", "report_exception"),
    "completed": ("pick", "check", "pack", "ship", "pick_up", "deliver", "complete"),
    "cancelled": ("cancel",),
}
CHANNELS = ("douyin", "miniprogram", "k3")
CROWD_STOCK = 200  # units of each crowd SKU in each crowd store: plenty, so no crowd order runs short
SKUS_PER_STORE = 24


@dataclass(frozen=True)
class CrowdOrder:
    external_id: str
    channel: str
    customer: tuple[str, str, str]
    address: str
    store: str
    lines: tuple[tuple[str, int], ...]
    end_state: str


def crowd_stock() -> dict[str, tuple[str, ...]]:
    """Store -> the crowd SKUs it stocks (CROWD_STOCK units each)."""
    rng = random.Random(18)
    pool = [s for s in SKUS if s not in STORY_SKUS]
    return {store: tuple(sorted(rng.sample(pool, SKUS_PER_STORE))) for store in CROWD_STORES}


def crowd_orders() -> tuple[CrowdOrder, ...]:
    rng = random.Random(300)
    stock = crowd_stock()
    states = [state for state, count in CROWD for _ in range(count)]
    rng.shuffle(states)
    orders = []
    for i, state in enumerate(states, start=1):
        store = CROWD_STORES[i % len(CROWD_STORES)]
        city, streets = _STREETS[store[:2]]
        skus = rng.sample(stock[store], rng.randint(1, 3))
        channel = CHANNELS[i % len(CHANNELS)]
        prefix = {"douyin": "DY", "miniprogram": "MP", "k3": "K3-SO-"}[channel]
        orders.append(CrowdOrder(
            external_id=f"{prefix}2602089{i:03d}", channel=channel,
            customer=CUSTOMERS[i % len(CUSTOMERS)],
            address=f"{city}{rng.choice(streets)}{rng.randint(1, 999)}号", store=store,
            lines=tuple((sku, rng.randint(1, 4)) for sku in skus), end_state=state,
        ))
    return tuple(orders)
