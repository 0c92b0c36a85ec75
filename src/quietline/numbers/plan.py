"""The mainland China number plan as quietline needs it: mobile ranges with their original carrier,
short codes and service numbers that ``phonenumbers`` does not know.

Sources (REFERENCE.md "Number plan"): MIIT mobile allocations as of 2023-03 (《电信网码号资源管理办法》
and the 工信部 number-segment approvals), the resale (转售) ranges 162/165/167/170/171, the satellite ranges
1349 and 174, China Broadnet's 192, the 106 SMS port plan and the public short codes. A prefix names
only the carrier a range was *first allocated* to; the current carrier of a ported number comes from the
portability table (工信部信管〔2019〕242号), never from this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

from quietline.vocabulary import Carrier, NumberType

MOBILE = Carrier.CHINA_MOBILE.value
UNICOM = Carrier.CHINA_UNICOM.value
TELECOM = Carrier.CHINA_TELECOM.value
BROADNET = Carrier.CHINA_BROADNET.value


@dataclass(frozen=True, slots=True)
class MobileRange:
    """What the number plan says about an 11-digit ``1xx`` range.

    ``portable`` follows 工信部信管〔2019〕242号: only ordinary cellular numbers of the basic carriers may
    port; resale (转售), satellite and IoT (物联网) numbers may not.
    """

    type: NumberType
    carrier: str | None
    portable: bool
    label: str


_CELLULAR = {MOBILE: "中国移动", UNICOM: "中国联通", TELECOM: "中国电信", BROADNET: "中国广电"}


def _cellular(carrier: str) -> MobileRange:
    return MobileRange(NumberType.MOBILE, carrier, True, f"{_CELLULAR[carrier]}手机号段")


def _resale(host: str) -> MobileRange:
    # Resale numbers are hosted on a basic carrier's network but belong to a virtual operator and
    # cannot port (242号文: 携号转网 covers the basic carriers' cellular numbers only).
    return MobileRange(NumberType.RESALE, host, False, f"转售号段（{_CELLULAR[host]}网络）")


def _iot(carrier: str) -> MobileRange:
    # 146/148 are the carriers' IoT (物联网) ranges: cellular, but excluded from portability.
    return MobileRange(NumberType.MOBILE, carrier, False, f"{_CELLULAR[carrier]}物联网号段")


def _satellite(carrier: str | None) -> MobileRange:
    return MobileRange(NumberType.SATELLITE, carrier, False, "卫星移动通信号段")


#: Three-digit network codes (MIIT allocation as of 2023-03, REFERENCE.md).
_THREE_DIGIT: dict[str, MobileRange] = {}
for _prefixes, _range in (
    (
        (
            "135",
            "136",
            "137",
            "138",
            "139",
            "147",
            "150",
            "151",
            "152",
            "157",
            "158",
            "159",
            "172",
            "178",
            "182",
            "183",
            "184",
            "187",
            "188",
            "195",
            "197",
            "198",
        ),
        _cellular(MOBILE),
    ),
    (
        ("130", "131", "132", "145", "155", "156", "166", "175", "176", "185", "186", "196"),
        _cellular(UNICOM),
    ),
    (
        ("133", "149", "153", "173", "177", "180", "181", "189", "190", "191", "193", "199"),
        _cellular(TELECOM),
    ),
    (("192",), _cellular(BROADNET)),
    (("148",), _iot(MOBILE)),
    (("146",), _iot(UNICOM)),
    (("165",), _resale(MOBILE)),
    (("167", "171"), _resale(UNICOM)),
    (("162",), _resale(TELECOM)),
    # 174 is the satellite range; 1740x is China Telecom's Tiantong (天通) service, the rest of 174 has
    # no basic-carrier owner in the published allocation.
    (("174",), _satellite(None)),
):
    for _p in _prefixes:
        _THREE_DIGIT[_p] = _range

#: Four-digit exceptions inside a three-digit range.
_FOUR_DIGIT: dict[str, MobileRange] = {
    # 134 0–8 is China Mobile; 1349 is China Telecom's satellite range.
    **{f"134{d}": _cellular(MOBILE) for d in "012345678"},
    "1349": _satellite(TELECOM),
    "1740": _satellite(TELECOM),
    # 170 is split by the fourth digit between the hosts of resale operators.
    **{f"170{d}": _resale(TELECOM) for d in "012"},
    **{f"170{d}": _resale(MOBILE) for d in "356"},
    **{f"170{d}": _resale(UNICOM) for d in "4789"},
}


def _build_mobile_table() -> MappingProxyType[str, MobileRange]:
    table: dict[str, MobileRange] = {}
    for p3, info in _THREE_DIGIT.items():
        for d in "0123456789":
            table[p3 + d] = info
    table.update(_FOUR_DIGIT)
    return MappingProxyType(table)


#: Every allocated four-digit mobile prefix → its range; a prefix missing here is unallocated.
MOBILE_PREFIXES: MappingProxyType[str, MobileRange] = _build_mobile_table()


@dataclass(frozen=True, slots=True)
class ShortCode:
    """A short code or service number quietline knows by name."""

    code: str
    label: str
    type: NumberType
    never_block: bool
    carrier: str | None = None


def _codes(type_: NumberType, never_block: bool, entries: dict[str, str]) -> dict[str, ShortCode]:
    return {c: ShortCode(c, label, type_, never_block) for c, label in entries.items()}


#: Emergency numbers: never blocked, whatever any list says (DESIGN.md decision order, step 1).
EMERGENCY = _codes(
    NumberType.SHORT_CODE,
    True,
    {
        "110": "匪警",
        "112": "移动网络紧急呼叫",
        "119": "火警",
        "120": "医疗急救",
        "122": "交通事故报警",
        "999": "红十字急救",
        "12110": "短信报警",
        "12119": "森林火警",
        "12122": "高速公路报警救援",
        "12395": "水上遇险求救",
    },
)

#: Government public-service numbers (12xxx): never blocked either (step 1, "public service").
PUBLIC_SERVICE = _codes(
    NumberType.SHORT_CODE,
    True,
    {
        "12306": "铁路客户服务",
        "12315": "市场监管投诉举报",
        "12319": "城建服务热线",
        "12320": "公共卫生热线",
        "12321": "网络不良与垃圾信息举报受理中心",
        "12328": "交通运输服务监督",
        "12329": "住房公积金热线",
        "12333": "人力资源和社会保障热线",
        "12338": "妇女维权热线",
        "12345": "政务服务便民热线",
        "12348": "法律援助热线",
        "12355": "青少年服务热线",
        "12358": "价格举报热线",
        "12366": "纳税服务热线",
        "12369": "环保举报热线",
        "12377": "网络违法和不良信息举报",
        "12378": "银行保险消费者投诉",
        "12381": "涉诈预警劝阻短信",
        "12388": "纪检监察举报",
    },
)

#: 96110: the police anti-fraud warning line (反诈预警劝阻专线) calls people about to be defrauded.
ANTI_FRAUD = {"96110": ShortCode("96110", "反诈预警劝阻专线", NumberType.SERVICE_95_96, True)}

#: Carriers' own service codes: legitimate, but they also promote the carrier's services
#: (telecom_promo), so they are not on the never-block list.
CARRIER_SERVICE = {
    code: ShortCode(code, label, NumberType.SHORT_CODE, False, carrier)
    for code, label, carrier in (
        ("10086", "中国移动客服", MOBILE),
        ("10080", "中国移动投诉", MOBILE),
        ("10010", "中国联通客服", UNICOM),
        ("10015", "中国联通投诉", UNICOM),
        ("10000", "中国电信客服", TELECOM),
        ("10001", "中国电信自助服务", TELECOM),
        ("10099", "中国广电客服", BROADNET),
        ("114", "查号台", None),
    )
}

#: Every named short code by its digits.
SHORT_CODES: MappingProxyType[str, ShortCode] = MappingProxyType(
    {**EMERGENCY, **PUBLIC_SERVICE, **ANTI_FRAUD, **CARRIER_SERVICE}
)

#: 106 SMS ports: 1062 provincial commercial, 1065 the carriers' own, 1066 national commercial,
#: 1069x non-commercial platforms and public-interest services. Senders append extension digits; CMPP
#: carries at most 21 digits (REFERENCE.md).
SMS_PORT_PREFIXES: MappingProxyType[str, str] = MappingProxyType(
    {
        "1062": "省内商业短信端口",
        "1065": "运营商自有短信端口",
        "1066": "全国商业短信端口",
        "1069": "非商业/公益短信平台端口",
    }
)
SMS_PORT_MIN_DIGITS = 7
SMS_PORT_MAX_DIGITS = 21

#: 95xxx… (national service numbers of large enterprises and call centres) and 96xxx… (local service
#: numbers) are 5 to 8 digits long.
SERVICE_MIN_DIGITS = 5
SERVICE_MAX_DIGITS = 8
