"""The kind of danger a message names, and the number its safety reply tells the resident to
call first: fire 119, an injury or illness 120 (gas poisoning 120, with its own advice: air the
room), money leaving a victim now 110 and 96110, everything else 110. Emergencies' replies and
pages say it; merges compare kinds with it."""

from __future__ import annotations

import re

from handlers.classify import SCAM_NOW, Classification, normalise

_FIRE = re.compile(
    r"火|烟|燃|烧|爆炸|点着|煤气|燃气|天然气|液化气|\bfire\b|\bsmoke|\bburning\b"
    r"|\b(?:zhao|zhe|shi) ?huo\b"  # pinyin: 着火 失火
)
# Words with 烧 or 火 that are no fire: a fight at a barbecue stall (烧烤摊) is the police's,
# a fever (发烧, 高烧) the ambulance's.
_NOT_FIRE = re.compile(r"烧烤|发烧|高烧|退烧|烧到[0-9一二三四五六七八九十]+度|火锅")
# Gas or a charcoal stove, and somebody it has made ill: 120 first, and air the room (the fire
# reply's "evacuate, don't go back" leaves the unconscious inside). A leak alone stays 119.
_GAS = re.compile(r"煤气|燃气|天然气|液化气|一氧化碳|烧炭|炭火|炭盆|煤炉|炉子")
_POISONED = re.compile(
    r"中毒|晕|昏|叫不醒|不醒|没反应|头疼|头痛|迷糊|想吐|呕吐|一直吐|发紫|倒在|倒下"
)
# Flames or an explosion make it a fire whoever is hurt.
_FLAMES = re.compile(r"着火|起火|失火|火(?:很|越来越)?大|烧起来|爆炸|炸了|冒烟|浓烟")
_MEDICAL = re.compile(
    r"晕|昏|倒地|不醒|没气|没呼吸|抽搐|抽风|吐血|流血|出血|中毒|心脏|喘不|摔|骨折|受伤"
    # A newcomer's trial (2026-12-07) found these sent to 110: poison swallowed (not threatened:
    # 说要喝农药 is the police's), wrists cut, a birth, a heart or a stroke, a fever with fits,
    # somebody lying still after a crash or caught in the wreck. Not a swimmer in trouble or a
    # car in a flood: the rescue comes first (110).
    r"|(?<![要想])(?:喝|吃)了?农药|服毒|安眠药|老鼠药|敌敌畏|百草枯|洗衣液|(?<![要想])割腕"
    r"|(?:流|出)了?(?:好多|很多|一地|满地)?血"
    r"|羊水|要生了|难产|早产|心口|胸口|胸闷|说不出话|嘴(?:都)?歪|半边身子|中风了|脑梗|休克|昏迷"
    r"|白沫|没反应|叫不(?:应|答应|起来)|浑身抽|一直抽|发烧|高烧|烫伤|烧伤|触电|被电(?:到|着)了"
    r"|人 ?不动了|下来了 ?不动了|(?<![树杆墙牌车])倒在|躺在(?:地|路)|躺地上"
    r"|(?:卡|压)在(?:车|驾驶室)"
    r"|\bunconscious\b|\bnot breathing\b|\bbleeding\b|\boverdose\b"
)


# An injury from violence is the police's first (110), not the ambulance's.
_VIOLENCE = re.compile(
    r"刀|枪|砍|捅|打|抢|绑|杀|砸(?:人|头|他|她|我)|踹|动手|推下|推倒|钢管|棍|酒瓶|knife|gun|stab|beat"
)
# ...but these are no violence: rolling in pain (在地上打滚), spraying pesticide (打农药), a call
# (打电话, 打120), a rescue (抢救), a fish or an insect killed (杀鱼, 杀虫剂).
_NOT_VIOLENCE = re.compile(
    r"打滚|打农药|打电话|打(?:110|119|120)|打不通|打针|打车|打工|打呼噜|抢救|杀鱼|杀虫"
)


# How an alarm goes on, in the words of the one who raised it: where the attacker ran or drove,
# that the fire is out, who is still inside, that help came. A newcomer's trial found "打人的
# 那个开一辆白色面包车往镇上跑了" and a fire's "老人还在二楼" opened second P1s with second pages.
_GOES_ON = re.compile(
    r"跑了|逃了|逃跑|溜了|往.{0,10}(?:跑|逃|去了|走了|开走|开了)|开走了|车牌|穿(?:着|的)?[红黑白蓝灰绿黄]"
    r"|灭了|扑灭|没事了|找到了|抓到|抓住|送医|醒了|还在"
)
# A scam names no flames, wound or blow, and is still a danger of its own: "有人冒充公安打电话来了
# 叫我马上转账" after the same resident's fight is a second P1 (it was folded into the fight).
_SCAM = re.compile(r"转账|汇款|冒充|骗|验证码|屏幕共享|共享屏幕|安全账户|银行卡")


def goes_on(plain: str) -> bool:
    """Whether normalised ``plain`` says how an alarm goes on (:data:`_GOES_ON`)."""
    return _GOES_ON.search(plain) is not None


def names_a_danger(plain: str) -> bool:
    """Whether normalised ``plain`` names a danger of some kind (flames, an injury, violence,
    gas, a scam): "在村东头第三家 老人还在二楼" names none, it says where."""
    return bool(
        _FIRE.search(_NOT_FIRE.sub("", plain))
        or _MEDICAL.search(plain)
        or _GAS.search(plain)
        or _VIOLENCE.search(_NOT_VIOLENCE.sub("", plain))
        or _SCAM.search(plain)
    )


# The number each safety reply tells the resident to call first; officers' pages say the same.
FIRST_NUMBER = {
    "emergency_reply": "110",
    "emergency_reply_fire": "119",
    "emergency_reply_medical": "120",
    "emergency_reply_gas": "120",  # gas poisoning: air the room, then 120 (119 for the leak)
    "emergency_reply_fraud": "110",  # and 96110, the anti-fraud line, in the same sentence
}


def safety_reply_key(text: str, result: Classification | None = None) -> str:
    """Fire first names 119, an injury or illness 120, gas poisoning 120 (air the room), money
    leaving a victim now says stop the transfer (110, 96110), everything else 110."""
    if result is not None and SCAM_NOW in result.matched:
        return "emergency_reply_fraud"
    return reply_key_of(normalise(text))


def reply_key_of(plain: str) -> str:
    """:func:`safety_reply_key` of normalised text."""
    if _GAS.search(plain) and _POISONED.search(plain) and not _FLAMES.search(plain):
        return "emergency_reply_gas"
    if _FIRE.search(_NOT_FIRE.sub("", plain)):
        return "emergency_reply_fire"
    if _MEDICAL.search(plain) and not _VIOLENCE.search(_NOT_VIOLENCE.sub("", plain)):
        return "emergency_reply_medical"
    return "emergency_reply"
