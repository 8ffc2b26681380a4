"""Pools of realistic Chinese names, 杭州市 places and enterprise wording for the demo data.

Everything here is constant data plus tiny helpers that draw from a ``random.Random`` the
caller owns, so the generator stays deterministic.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

# Surnames weighted roughly by frequency in Zhejiang (陈, 王, 张, 李, 吴, 徐 … lead there).
SURNAMES: tuple[tuple[str, int], ...] = (
    ("陈", 90),
    ("王", 80),
    ("张", 60),
    ("李", 55),
    ("吴", 45),
    ("徐", 40),
    ("周", 38),
    ("金", 30),
    ("沈", 30),
    ("朱", 28),
    ("杨", 28),
    ("黄", 25),
    ("胡", 25),
    ("叶", 22),
    ("林", 22),
    ("郑", 20),
    ("钱", 18),
    ("孙", 18),
    ("何", 16),
    ("俞", 15),
    ("楼", 12),
    ("方", 14),
    ("赵", 14),
    ("蒋", 12),
    ("姚", 12),
    ("邵", 10),
    ("汪", 10),
    ("潘", 10),
    ("章", 10),
    ("傅", 8),
    ("袁", 8),
    ("刘", 20),
    ("高", 10),
    ("马", 8),
    ("许", 10),
    ("余", 10),
    ("程", 8),
    ("谢", 8),
    ("丁", 8),
    ("卢", 7),
    ("严", 6),
    ("应", 6),
    ("施", 6),
    ("夏", 6),
    ("屠", 4),
    ("裘", 4),
    ("葛", 5),
    ("欧阳", 2),
    ("诸葛", 1),
    ("司马", 1),
)

MALE_CHARS = "伟强军磊洋勇杰涛斌超明辉鹏飞华刚健峰建国志浩宇俊宏博文昊天晨阳亮波东海峻凯浩然子轩宇航"
FEMALE_CHARS = "芳娜敏静丽艳娟霞燕玲婷雪慧颖琳洁倩佳怡萱欣然雨涵思语梦瑶晓丹秀英红梅兰琴"

ETHNICITIES: tuple[tuple[str, int], ...] = (
    ("汉族", 955),
    ("畲族", 10),
    ("回族", 8),
    ("土家族", 8),
    ("苗族", 7),
    ("满族", 4),
    ("壮族", 4),
    ("布依族", 2),
    ("侗族", 2),
)


@dataclass(frozen=True)
class District:
    """One 杭州市 district or county: admin code (GB/T 2260), name, a few real street names."""

    code: str
    name: str
    court_code: str  # the court number in case numbers, e.g. 浙0106
    streets: tuple[str, ...]


DISTRICTS: tuple[District, ...] = (
    District(
        "330102",
        "上城区",
        "浙0102",
        ("解放路", "延安路", "庆春路", "清泰街", "望江路", "秋涛路", "江锦路", "凯旋路"),
    ),
    District(
        "330105",
        "拱墅区",
        "浙0105",
        ("莫干山路", "湖墅南路", "上塘路", "丽水路", "大关路", "祥园路", "登云路"),
    ),
    District(
        "330106",
        "西湖区",
        "浙0106",
        ("文三路", "文二路", "天目山路", "古墩路", "教工路", "学院路", "西溪路", "留和路"),
    ),
    District(
        "330108",
        "滨江区",
        "浙0108",
        ("江南大道", "滨盛路", "网商路", "江虹路", "长河路", "聚才路", "西兴路", "闻涛路"),
    ),
    District(
        "330109",
        "萧山区",
        "浙0109",
        ("市心中路", "金城路", "人民路", "通惠路", "萧绍路", "北干山南路", "山阴路"),
    ),
    District(
        "330110",
        "余杭区",
        "浙0110",
        ("文一西路", "余杭塘路", "高教路", "五常大道", "良睦路", "龙潭路", "向往街"),
    ),
    District(
        "330113", "临平区", "浙0113", ("迎宾路", "世纪大道", "南苑街", "藕花洲大街", "星光街", "临平大道")
    ),
    District(
        "330114", "钱塘区", "浙0114", ("学正街", "学林街", "文泽路", "海达南路", "江东大道", "青六中路")
    ),
    District(
        "330111", "富阳区", "浙0111", ("桂花路", "江滨西大道", "金桥北路", "恩波大道", "文教路", "体育馆路")
    ),
    District("330112", "临安区", "浙0112", ("钱王街", "万马路", "吴越街", "衣锦街", "科技大道", "大园路")),
    District("330122", "桐庐县", "浙0122", ("迎春南路", "白云源路", "春江路", "大奇山路", "学圣路")),
    District("330127", "淳安县", "浙0127", ("新安大街", "环湖北路", "青溪大道", "睦州路", "阳光路")),
    District("330182", "建德市", "浙0182", ("严州大道", "新安东路", "白沙路", "府东街", "江滨中路")),
)
# Weights: the urban districts hold most residents and enterprises.
DISTRICT_WEIGHTS: tuple[int, ...] = (12, 12, 14, 10, 13, 14, 7, 6, 4, 3, 2, 1, 2)

# Birthplace codes of residents who moved to 杭州 (older codes stay valid in ID numbers).
OTHER_BIRTH_AREAS: tuple[str, ...] = (
    "330103",
    "330104",
    "330184",
    "330302",
    "330381",
    "330424",
    "330602",
    "330782",
    "331002",
    "342221",
    "341222",
    "411522",
    "412727",
    "510722",
    "522121",
    "362330",
    "430521",
    "320882",
)

COMPOUNDS: tuple[str, ...] = (
    "翠苑",
    "文鼎苑",
    "嘉绿苑",
    "丰潭",
    "三墩",
    "濮家",
    "景芳",
    "采荷",
    "闸弄口",
    "朝晖",
    "和睦",
    "大关",
    "白马湖",
    "春江花月",
    "东方郡",
    "绿城桂花",
    "金色海岸",
    "滨江花园",
    "阳光城",
    "东海水景",
)
TOWERS: tuple[str, ...] = (
    "华星时代广场",
    "浙江数字大厦",
    "创新大厦",
    "东方通信科技园",
    "智慧e谷",
    "中赢国际",
    "星耀城",
    "万达广场",
    "未来科技城海创园",
    "云栖小镇国际会展中心",
    "宝龙城",
    "钱江国际时代广场",
)

BRAND_CHARS = (
    "云栖数智华创恒信嘉禾博远江钱塘溪河天目湖星银聚力鼎盛锦程新瑞丰宏达汇通安众联光景优品青藤"
    "松果鲸蓝清源明德睿见链泰和金桥润泽海纳馨卓越启长风正元万象东微易美佳诚康宁阳鸿"
)


@dataclass(frozen=True)
class Industry:
    """A line of business: the word in the enterprise name and its 经营范围."""

    word: str
    scope: str


INDUSTRIES: tuple[Industry, ...] = (
    Industry(
        "数据科技",
        "一般项目：技术服务、技术开发、技术咨询、技术交流、技术转让、技术推广；数据处理服务；软件开发；大数据服务",
    ),
    Industry(
        "网络科技",
        "一般项目：技术服务、技术开发、技术咨询；网络技术服务；互联网销售（除销售需要许可的商品）；信息系统集成服务",
    ),
    Industry(
        "信息技术",
        "一般项目：信息技术咨询服务；信息系统集成服务；计算机系统服务；软件开发；数据处理和存储支持服务",
    ),
    Industry(
        "电子商务",
        "一般项目：互联网销售（除销售需要许可的商品）；日用百货销售；服装服饰零售；化妆品零售；供应链管理服务",
    ),
    Industry(
        "贸易", "一般项目：货物进出口；技术进出口；五金产品批发；金属材料销售；建筑材料销售；针纺织品销售"
    ),
    Industry(
        "餐饮管理",
        "许可项目：餐饮服务；食品经营。一般项目：餐饮管理；外卖递送服务；食品销售（仅销售预包装食品）",
    ),
    Industry(
        "建筑工程", "许可项目：建设工程施工；住宅室内装饰装修。一般项目：园林绿化工程施工；土石方工程施工"
    ),
    Industry(
        "装饰设计工程", "一般项目：工程管理服务；专业设计服务；住宅水电安装维护服务；家具安装和维修服务"
    ),
    Industry(
        "物流", "一般项目：普通货物仓储服务（不含危险化学品等需许可审批的项目）；国内货物运输代理；装卸搬运"
    ),
    Industry(
        "生物医药科技",
        "一般项目：医学研究和试验发展；生物化工产品技术研发；第一类医疗器械销售；第二类医疗器械销售",
    ),
    Industry(
        "文化传媒", "一般项目：组织文化艺术交流活动；广告设计、代理；广告制作；会议及展览服务；电影摄制服务"
    ),
    Industry(
        "教育科技", "一般项目：教育咨询服务（不含涉许可审批的教育培训活动）；软件开发；技术服务、技术开发"
    ),
    Industry(
        "环保科技", "一般项目：环境保护专用设备销售；水污染治理；大气污染治理；固体废物治理；节能管理服务"
    ),
    Industry(
        "新能源科技", "一般项目：太阳能发电技术服务；储能技术服务；电池销售；充电桩销售；新能源汽车整车销售"
    ),
    Industry("食品", "许可项目：食品生产；食品销售。一般项目：食用农产品批发；食用农产品零售；农副产品销售"),
    Industry("服饰", "一般项目：服装制造；服装服饰批发；服装服饰零售；鞋帽批发；针纺织品及原料销售"),
    Industry(
        "机械设备", "一般项目：通用设备制造（不含特种设备制造）；机械设备销售；机械设备研发；五金产品制造"
    ),
    Industry("物业管理", "一般项目：物业管理；停车场服务；家政服务；城市绿化管理；专业保洁、清洗、消毒服务"),
    Industry("健康管理", "一般项目：健康咨询服务（不含诊疗服务）；养生保健服务（非医疗）；远程健康管理服务"),
    Industry("供应链管理", "一般项目：供应链管理服务；国内贸易代理；销售代理；国际货物运输代理；报关业务"),
    Industry("农业开发", "一般项目：蔬菜种植；水果种植；花卉种植；农业专业及辅助性活动；休闲观光活动"),
    Industry("茶业", "许可项目：茶叶制品生产。一般项目：茶具销售；农副产品销售；初级农产品收购"),
    Industry(
        "企业管理咨询",
        "一般项目：企业管理咨询；信息咨询服务（不含许可类信息咨询服务）；市场营销策划；财务咨询",
    ),
    Industry(
        "人力资源",
        "许可项目：职业中介活动；劳务派遣服务。一般项目：人力资源服务（不含职业中介活动、劳务派遣服务）",
    ),
)
SCOPE_TAIL = "（除依法须经批准的项目外，凭营业执照依法自主开展经营活动）。"

# 企业类型 and the suffix its name takes.
ENT_TYPES: tuple[tuple[str, str, int], ...] = (
    ("有限责任公司（自然人投资或控股）", "有限公司", 55),
    ("有限责任公司（自然人独资）", "有限公司", 18),
    ("有限责任公司（非自然人投资或控股的法人独资）", "有限公司", 8),
    ("股份有限公司（非上市、自然人投资或控股）", "股份有限公司", 5),
    ("股份有限公司（上市）", "股份有限公司", 1),
    ("个人独资企业", "商行", 6),
    ("有限合伙企业", "合伙企业（有限合伙）", 5),
    ("外商独资企业", "有限公司", 2),
)

MOBILE_PREFIXES: tuple[str, ...] = (
    "133",
    "135",
    "136",
    "137",
    "138",
    "139",
    "150",
    "151",
    "152",
    "155",
    "157",
    "158",
    "159",
    "166",
    "173",
    "177",
    "180",
    "181",
    "182",
    "186",
    "187",
    "188",
    "189",
    "198",
    "199",
)


def weighted(rng: random.Random, pairs: tuple[tuple[str, int], ...]) -> str:
    """Draw one value from (value, weight) pairs."""
    return rng.choices([p[0] for p in pairs], weights=[p[1] for p in pairs])[0]


def person_name(rng: random.Random, male: bool) -> str:
    """A Chinese full name: surname plus one or two given-name characters."""
    chars = MALE_CHARS if male else FEMALE_CHARS
    given = rng.choice(chars) + (rng.choice(chars) if rng.random() < 0.78 else "")
    return weighted(rng, SURNAMES) + given


def district(rng: random.Random) -> District:
    """A 杭州市 district, weighted towards the urban ones."""
    return rng.choices(DISTRICTS, weights=DISTRICT_WEIGHTS)[0]


def home_address(rng: random.Random, d: District) -> str:
    """A residential address: street number, then building, unit and room."""
    street = rng.choice(d.streets)
    if rng.random() < 0.6:
        return (
            f"浙江省杭州市{d.name}{street}{rng.randint(1, 999)}号{rng.choice(COMPOUNDS)}小区"
            f"{rng.randint(1, 36)}幢{rng.randint(1, 4)}单元{rng.randint(1, 28)}{rng.randint(1, 4):02d}室"
        )
    return (
        f"浙江省杭州市{d.name}{street}{rng.randint(1, 999)}号{rng.randint(1, 20)}幢{rng.randint(101, 1802)}室"
    )


def business_address(rng: random.Random, d: District) -> str:
    """An enterprise's registered address (住所)."""
    street = rng.choice(d.streets)
    if rng.random() < 0.5:
        return (
            f"浙江省杭州市{d.name}{street}{rng.randint(1, 999)}号{rng.choice(TOWERS)}"
            f"{rng.choice('ABCD')}座{rng.randint(2, 30)}{rng.randint(1, 20):02d}室"
        )
    return (
        f"浙江省杭州市{d.name}{street}{rng.randint(1, 999)}号"
        f"{rng.randint(1, 12)}幢{rng.randint(1, 9)}层{rng.randint(101, 999)}室"
    )


def mobile(rng: random.Random) -> str:
    """A valid 11-digit mobile number."""
    return rng.choice(MOBILE_PREFIXES) + f"{rng.randrange(10**8):08d}"


def brand(rng: random.Random) -> str:
    """A two-character 字号 such as 云栖 or 数智."""
    a = rng.choice(BRAND_CHARS)
    b = rng.choice(BRAND_CHARS)
    while b == a:
        b = rng.choice(BRAND_CHARS)
    return a + b
