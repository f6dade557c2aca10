"""Rule-based classifier for police–resident chat messages.

Every message gets one of :data:`LABELS` plus an ``emergency`` flag.  All chat vocabulary
lives in ``handlers/lexicon.yaml``; this module only implements the mechanics:

1. :func:`normalise` the text (Traditional → Simplified, full-width → half-width, …) so the
   lexicon only has to be written once, in Simplified Chinese.
2. Run the *emergency layer* first.  It is deliberately separate from label scoring: missing
   an emergency is far worse than a wrong label, so it has its own patterns and its own
   blockers (past tense, hypotheticals, publicity/drills, "already found").  Blockers are
   *scoped*, never message-wide switches: a past or publicity marker covers the text from its
   clause up to the next present-time / local marker ("昨天他说要弄死我,现在又拿着刀来了"
   still fires), a hypothetical covers only its clause, and explicit urgency ("快来", "救命")
   overrides every blocker except negation and hypotheticals.  Hyperbole ("热死了", "笑死")
   and harmless compounds ("火锅", "杀价") are masked out before the emergency patterns run.
3. Score every label with weighted lexicon entries, cancelling matches that follow a
   negator ("不是报警"), then apply context modifiers (public notices, hypotheticals).
4. Pick the best label, derive a margin-based confidence, and make sure an emergency is
   never filed as chatter, a question or a proposal.
5. Ask the learned second opinion (:mod:`handlers.ngram_model`, a character n-gram Naive
   Bayes trained on ``tests/data``), when one is loaded (:meth:`Classifier.from_file` does):
   it may *add* an emergency the rules missed (probability >= ``model_emergency_threshold``),
   never remove one; and it supplies the label when no label rule fired, or the rules are
   unclear, and it is itself confident (log-score margin >= ``model_label_min_gap``).
   ``matched`` then carries ``model:emergency`` / ``model:label``.

The module is pure Python; the only I/O is reading the lexicon and model files.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import opencc
import yaml

from handlers.ngram_model import DEFAULT_MODEL, NgramModel
from handlers.regex_literals import (
    guard_wildcards,
    required_literals,
    single_character,
    start_guard,
    substrings,
)

__all__ = [
    "LABELS",
    "Classification",
    "Classifier",
    "EvalReport",
    "LabelStats",
    "evaluate",
    "normalise",
]

LABELS: tuple[str, ...] = ("consultation", "suggestion", "report", "help", "dispute", "other")

DEFAULT_LEXICON = Path(__file__).with_name("lexicon.yaml")

# Labels that may carry an emergency; anything else is overridden when the emergency
# layer fires, because a fire reported with "请问" is still a fire.
_EMERGENCY_LABELS = ("report", "help")


# ---------------------------------------------------------------------------------------
# Normalisation
# ---------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _t2s() -> opencc.OpenCC:
    # Building the converter parses dictionaries; do it once per process.
    return opencc.OpenCC("t2s")


@lru_cache(maxsize=4096)
def _t2s_segment(segment: str) -> str:
    return _t2s().convert(segment)


def _to_simplified(text: str) -> str:
    """opencc ``t2s``, one piece between separators at a time, each distinct piece once.

    opencc converts each piece between its separators (punctuation, spaces) on its own and
    pays a fixed cost per piece, empty ones included: "，，，…" cost a tree per comma.  Pieces
    are converted exactly as opencc would, but empty and repeated ones are not redone.
    """
    splitter = getattr(_t2s(), "split_chars_re", None)
    if splitter is None:  # pragma: no cover - another opencc build
        return _t2s().convert(text)
    parts = splitter.split(text)
    # Even indices are the pieces, odd ones the separators (captured by the split).
    return "".join(
        _t2s_segment(part) if i % 2 == 0 and part else part for i, part in enumerate(parts)
    )


_WS_RE = re.compile(r"\s+")


# Regional wording, applied after t2s so that one Simplified spelling serves every writer.
# Three tiers, from safe to context-dependent:
#
# 1. ``_REGIONAL_WORDS``: Cantonese (Hong Kong / Guangdong) and Taiwan words that are not
#    ordinary Mandarin at all, always replaced, in order (唔该 before 唔, 系咪 before 系 is
#    ever touched).  Taiwan and Hong Kong nouns map to the mainland word the lexicon uses
#    (捷运 -> 地铁, 机车 -> 摩托车, 警署 -> 派出所, 细路 -> 小孩).
# 2. ``_REGIONAL_PATTERNS``: the same, but needing a look-around (啲 is 点 after an
#    adjective and 些 elsewhere; 叫极都唔醒 is 怎么叫都不醒; 呃 is 骗 only before a victim).
# 3. ``_CANTONESE_CONTEXT``: characters that are ordinary Mandarin too (系 关系, 话 电话,
#    仲 仲裁, 紧 赶紧, 食 食物, 未 未成年), rewritten only in a message that shows an
#    unambiguous Cantonese marker (``_CANTONESE_MARKERS``), and even then sparing the
#    Mandarin compounds.
_REGIONAL_WORDS: tuple[tuple[str, str], ...] = (
    ("唔该晒", "谢谢"),
    ("唔该", "麻烦"),
    ("唔好", "不要"),
    ("系唔系", "是不是"),
    ("系咪", "是不是"),
    ("定系", "还是"),
    ("而家", "现在"),
    ("依家", "现在"),
    ("屋企", "家"),
    ("点样", "怎样"),
    ("点算", "怎么办"),
    ("点解", "为什么"),
    ("边度", "哪里"),
    ("边个", "谁"),
    ("琴晚", "昨晚"),
    ("寻晚", "昨晚"),
    ("琴日", "昨天"),
    ("寻日", "昨天"),
    ("今朝", "今早"),
    ("朝早", "早上"),
    ("听日", "明天"),
    ("啱啱", "刚刚"),
    ("眼瞓", "困"),
    ("瞓", "睡"),
    ("细路女", "小女孩"),
    ("细路仔", "小孩"),
    ("细路", "小孩"),
    ("细佬", "弟弟"),
    ("家姐", "姐姐"),
    ("大肚婆", "孕妇"),
    ("锁匙", "钥匙"),
    ("咸湿", "色情"),  # lewd: 咸湿相 / 咸湿佬
    ("好似", "好像"),
    ("前日", "前天"),
    ("老豆", "爸爸"),
    ("老窦", "爸爸"),
    ("差佬", "警察"),
    ("警署", "派出所"),
    ("差馆", "派出所"),
    ("跌低", "摔倒"),
    ("跌亲", "摔伤"),
    ("整亲", "弄伤"),
    ("咁样", "这样"),
    ("过数", "转账"),
    ("荡失路", "迷路"),
    ("电单车", "摩托车"),
    ("打机", "打游戏"),
    ("入数", "转账"),
    ("走佬", "跑路"),
    ("老千", "骗子"),
    ("食烟", "抽烟"),
    ("执到", "捡到"),
    ("入面", "里面"),
    ("落去", "下去"),
    ("落嚟", "下来"),
    ("落车", "下车"),
    ("隔篱", "隔壁"),
    ("喺度", "在这"),
    ("咗", "了"),
    ("喺", "在"),
    ("冇", "没"),
    ("嘅", "的"),
    ("佢", "他"),
    ("哋", "们"),
    ("唔", "不"),
    ("揾", "找"),  # t2s writes 搵 as 揾
    ("嗰", "那"),
    ("𠮶", "那"),  # t2s writes 嗰 as 𠮶
    ("嘢", "东西"),
    ("咩", "什么"),
    ("㗎", "的"),  # 真㗎 / 骗人㗎: the particle carries 的
    ("睇", "看"),
    ("畀", "给"),
    ("俾", "给"),
    ("嚟", "来"),
    ("攞", "拿"),
    ("揸", "拿"),
    ("嗌", "喊"),
    ("撳", "按"),
    ("攰", "累"),
    ("返家", "回家"),
    # South-western Mandarin (Sichuan, Guizhou, Hunan) and voice-input slips.
    ("莫得", "没有"),
    # Taiwan (and Hong Kong) nouns.
    ("捷运", "地铁"),
    ("简讯", "短信"),
    ("脚踏车", "自行车"),
    ("计程车", "出租车"),
    ("的士", "出租车"),
    ("身分证", "身份证"),
    ("网咖", "网吧"),
    ("鹰架", "脚手架"),
    ("机车", "摩托车"),
    ("骑士", "骑手"),
    ("帐户", "账户"),
    ("监视器", "监控"),
    ("闭路电视", "监控"),
    ("行车纪录器", "行车记录仪"),
    ("超商", "便利店"),
    ("溜滑梯", "滑梯"),
    ("校巴", "校车"),
    ("瓦斯", "燃气"),
    ("员警", "民警"),
    ("检举", "举报"),
    ("志工", "志愿者"),
    ("视讯", "视频"),
    ("影片", "视频"),
    ("讯息", "消息"),
    ("停车格", "停车位"),
    ("发财车", "小货车"),
    # Minnan (Hokkien) words in Taiwan and coastal Fujian writing.
    ("毋通", "不要"),
    ("囝仔", "孩子"),
    ("囡仔", "孩子"),
    ("少年仔", "年轻人"),
    ("代志", "事情"),
    ("拍谢", "不好意思"),
    ("歹势", "不好意思"),
    ("按怎", "怎么"),
    ("安怎", "怎么"),
    ("查某", "女的"),
    ("厝", "屋"),
)
_REGIONAL_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?<=[快好多少大细小慢早近远平贵轻重高低差])啲"), "点"),
    (re.compile(r"啲"), "些"),
    # 叫极都唔醒: "however much I call, (he) does not wake".
    (re.compile(r"([叫喊拍敲打摇推])极(?=[都也])"), r"怎么\1"),
    (re.compile(r"熄了?机"), "关机"),
    # 水浸 = flooding (水浸到楼梯, 水浸咗).
    (re.compile(r"(?<=水)浸(?=到|了|入|过|进|咗)"), "淹"),
    # 呃 is also a hesitation ("呃 我想问一下"): 骗 only next to a victim or a passive.
    (re.compile(r"呃(?=[人钱我你他她老]|了)|(?<=[被给是])呃"), "骗"),
    # V返 = V back (搵返 找回, 攞返 拿回); 未返 / 冇返 = not back yet.
    (re.compile(r"(?<=[找拿要追讨捡])(不|没)?返(?![回还程校乡厂利现航])"), r"\1回"),
    # 打紧交 (fighting now), 打咗交 / 打完交 (fought): the aspect goes in front.
    (re.compile(r"打[紧着]交(?!道)"), "在打架"),
    (re.compile(r"打(了|完|过)交(?!道)"), r"打\1架"),
    (re.compile(r"打交(?!道)"), "打架"),
    # 唔俾我哋行 / 不给他走: not letting somebody pass, go or see (不给钱 is still 给).
    (
        re.compile(
            r"不给(?=(?:我们|你们|他们|大家|我|你|他|她|人)(?:行|走|过|入|进|出|离开|见|看|停))"
        ),
        "不让",
    ),
    # 十几蚊 / 四千几蚊: Cantonese dollars.
    (re.compile(r"(?<=[0-9几十百千万两])蚊(?!子|虫|香)"), "块"),
    # 听讲 = 听说 (heard that), not 认真听讲 / 听讲座.
    (re.compile(r"(?<![认真专心用去来在坐])听讲(?![座课堂])"), "听说"),
    # South-western Mandarin: 看一哈 = 看一下; 遭偷了 / 遭罚款 = 被偷了 / 被罚款.
    (re.compile(r"(?<!哈)一哈(?!哈)"), "一下"),
    (re.compile(r"遭(?=[偷抢打骗罚撞咬抓砸扣])"), "被"),
    # Voice-input homophone: 以经 for 已经 (以经济 is a word).
    (re.compile(r"以经(?!济)"), "已经"),
    # Minnan negation: 袂听 / 毋通 = 不听 / 不要 (not 联袂, 毋庸, 毋须).
    (re.compile(r"(?<![联分])袂"), "不"),
    (re.compile(r"毋(?![庸须宁忘])"), "不"),
    # LINE is Taiwan's WeChat ("用LINE假冒里长借钱"); t2s leaves the Latin letters alone.
    (re.compile(r"(?<![a-zA-Z])(?:LINE|Line|line)(?![a-zA-Z])"), "微信"),
    (re.compile(r"(?<=[没未])返(?=[来去]|$|[^\w])|(?<![往遣折重])返(?=到|来)"), "回"),
    # "好 + verb + 几张 / 一段" proposes (好贴几张海报 = 可以贴几张), anywhere.
    (
        re.compile(
            r"(?<![很太真挺最不也还更蛮好])好(?=(?:贴|装|挂|放|加|派|设|录|拍)(?:几|一|两|些|点))"
        ),
        "可以",
    ),
)
# Northern Mandarin (North-east, Shandong, Henan): words no other writer uses, always mapped.
# 贼 + adjective is "very" (贼冷, 贼拉响), never the thief (有贼, 小偷小贼, 贼进屋); 找着了 is found
# (还在找着 is still looking); 夜个 is yesterday, not 半夜个.
_NORTHERN: tuple[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]], ...] = (
    (re.compile("干仗|干架"), "打架"),
    (re.compile("耍钱"), "赌博"),
    (re.compile("嘎哈|干哈"), "干什么"),
    (re.compile("咋整"), "怎么办"),
    (re.compile("(?:那|哪|这)(?:嘎达|旮旯|疙瘩)(?:儿)?"), lambda m: m.group()[0] + "里"),
    (re.compile("忽悠"), "骗"),
    (re.compile("瞅"), "看"),
    (
        re.compile(
            r"(?<![有小偷盗窃毛飞家抓防个那这的是老蟊])贼(?:拉)?"
            r"(?=[冷热大好快响亮疼痛臭贵远黑吵滑深厚高猛凶横香烦闹乱难硬狠急冲吓烫辣咸苦累脏乱])"
        ),
        "很",
    ),
    (re.compile(r"(?<![在正])(找|捡|逮|抓)着(?=了|个|一|啦|没|$|[,.!?，。！？ ])"), r"\1到"),
    (re.compile(r"(?<![半深午黑一])夜儿?个|昨儿个"), "昨天"),
    (re.compile("今儿个"), "今天"),
    (re.compile("明儿个"), "明天"),
    (re.compile("前儿个"), "前天"),
    (re.compile("后晌"), "下午"),
    (re.compile("(?:头|前)晌"), "上午"),
    (re.compile("晌午"), "中午"),
    (re.compile("整没了"), "弄丢了"),
    (re.compile("电驴子?"), "电动车"),
    (re.compile("屯子"), "村子"),
    (re.compile("唠嗑"), "聊天"),
    (re.compile(r"恁(?![地么般])"), "你"),
)
# Characters or words that only a Cantonese writer uses (checked on the t2s text).
_CANTONESE_MARKERS = re.compile(
    "[咗喺冇佢嘅嚟啲嘢咩揸嗌瞓哋嗰𠮶㗎喎嘞噉攞揾睇畀俾嘥咁]|唔|而家|屋企|系咪|琴晚|点解|边度|佢哋"
    # 快D黎, and an action verb + 紧 (偷紧 撬紧 斩紧: Mandarin has 抓紧 赶紧, never these).
    "|快[dD]|(?<!不)(?:偷|撬|斩|砍|转|烧|流|追|搬|剪|打|踢|劈)紧(?![张急迫密要凑俏])"
)
_CANTONESE_CONTEXT: tuple[tuple[re.Pattern[str], str], ...] = (
    # 话 = say (佢话, 学校话), not the noun (电话, 说话, 笑话, 脏话, 话费).
    (
        re.compile(
            r"(?<![电说讲笑脏对废实好坏情大回传讯通会神童问答土白谎空鬼梦闲粗怪官胡夜听谈])"
            # ... nor a language (广东话, 本地话, 家乡话, 客家话, 潮州话, 上海话).
            r"(?<!广东)(?<!本地)(?<!当地)(?<!家乡)(?<!客家)(?<!潮州)(?<!上海)"
            r"话(?![题费筒剧语])"
        ),
        "说",
    ),
    # 系 = is, not 关系 / 联系 / 系统 / 系列 / 中文系.
    (re.compile(r"(?<![关联体派直旁院水星维干谱世文学])系(?![统列数])"), "是"),
    (re.compile(r"(?<!伯)仲(?![裁夏介秋春冬])"), "还"),
    # V紧 = V-ing (喊紧, 扯紧, 住紧院), not 赶紧 / 抓紧 / 紧张 / 紧急.
    (
        re.compile(
            r"(?<=[\u4e00-\u9fff])(?<![赶抓加收绷拉要很太好最勒捏握攥揪扎锁关捂箍夹])紧(?![张急迫密要凑俏])"
        ),
        "着",
    ),
    # 食 = eat (食咗药), not 食物 / 零食 / 粮食.
    (
        re.compile(
            r"(?<![粮零伙饮美素肉主甜杂副面熟生节绝觅寄衣饱进冷])食(?![物品堂材用欲谱宿盐指])"
        ),
        "吃",
    ),
    (re.compile(r"(?<=不)识(?=[他她你我人])"), "认识"),
    (re.compile(r"未(?![成来知必婚满经遂免曾])"), "没"),
    (re.compile(r"(?<=去了)边|(?<=去)边(?=[?,.!？，。！ 啊呀]|$)"), "哪"),
    (
        re.compile(
            r"(?<![0-9几一两三四五六七八九十到半早晚])点(?=[做办补搞去处找知叫喊拍敲报续申登注挂])"
        ),
        "怎么",
    ),
    (re.compile(r"(?<=[我你他她给同])个仔"), "儿子"),
    (re.compile(r"(?<=[我你他她])个女(?![生孩人的])"), "女儿"),
    (re.compile(r"(?<=[接送])仔(?=[返放上去回])"), "儿子"),
    # A classifier after a pronoun is a possessive: 我间屋 我的屋, 佢部手机 他的手机.
    (
        re.compile(
            r"(?<=[我你他她])(?:间|部(?![门分队长署])|架(?!子)|条(?![件例约])|张|件(?!事)|辆)"
        ),
        "的",
    ),
    (re.compile(r"帮手(?=[\u4e00-\u9fff])"), "帮忙"),
    (re.compile("返学"), "上学"),
    (re.compile("返工"), "上班"),
    (re.compile("隔离"), "隔壁"),
    (re.compile("白车"), "救护车"),
    (re.compile(r"差人(?!送)"), "警察"),
    (re.compile(r"好彩(?!头)"), "幸好"),
    (re.compile("成日"), "成天"),
    (re.compile("晚晚"), "每晚"),
    (re.compile("日日"), "天天"),
    (re.compile("咁"), "这么"),
    # 揸住 / 指住 = holding / pointing at (拉住 / 抓住 are Mandarin as they are).
    (re.compile(r"(?<=[拿指抱牵揪扶追拖拽扯])住(?![院宿址户房])"), "着"),
    # 喊住 / 喊紧 = crying (嗌 is shouting); 闹我 = scolds me; 泊车 = parks.
    (re.compile(r"喊(?=[住着紧])"), "哭"),
    (re.compile(r"(?<![吵打哭胡起热])闹(?=[我你他她人])"), "骂"),
    (re.compile(r"(?<![湖停水漂淡])泊(?=车|在|住|了|着|位)"), "停"),
    # 吓亲 / 烫亲 = scared / scalded: V亲 is V到.
    (re.compile(r"(?<=[吓烫咬撞夹伤割切电扭])亲"), "到"),
    (re.compile(r"呢(?=[边度个些间家条位])"), "这"),
    (re.compile(r"企(?=[在着])"), "站"),
    (re.compile("落雨"), "下雨"),
    # 头先 = 刚才; 好辛苦 = feeling unwell (辛苦晒 / 辛苦了 are thanks); 成身 = 满身.
    (re.compile("头先"), "刚才"),
    (re.compile(r"(?<=[好很几咁])辛苦(?![了晒啦哂你大])"), "难受"),
    (re.compile(r"(?<![完变形构组合达促养])成身(?![份体材高价])"), "满身"),
    # 出唔到 = cannot get out; 行唔到 = cannot walk.
    (re.compile(r"出不到"), "出不来"),
    (re.compile(r"行不到(路)?"), "走不了"),
)
# Wu (Shanghai, Suzhou, Jiangnan towns): words only a Wu writer uses mark the message, and only
# then are the forms that are Mandarin too rewritten (伊 伊朗, 明朝 the dynasty, 寻 寻找,
# 好 + verb 好用, 困 sleep).  Run on the t2s text before the Cantonese words (今朝 is Wu "today",
# Cantonese "this morning"; 寻晚 is Cantonese and spared).
_WU_MARKERS = re.compile(
    r"阿拉(?![斯伯丁])|侬|覅|(?<![请切务众民])勿(?!忘)"
    r"|(?<![砍征讨步采杀攻])伐(?=[?!,.。，？！ ~]|$)"
    r"|里厢|辰光|交关|啥人|哪能|搿|伊拉(?!克)|小囡|姆妈|事体|打相打|吵相骂|困觉"
)
_WU_CONTEXT: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile("屋里厢"), "家里"),
    (re.compile("里厢"), "里面"),
    (re.compile(r"阿拉(?![斯伯丁])"), "我们"),
    (re.compile(r"伊拉(?!克)"), "他们"),
    (re.compile(r"(?<!木乃)伊(?![朗斯犁利拉甸蚊妹])"), "他"),
    (re.compile("侬"), "你"),
    (re.compile("覅"), "不要"),
    (re.compile("勿"), "不"),
    # 伐 closing a question (是真的伐? 有人看到伐?), not 砍伐 / 步伐.
    (re.compile(r"(?<![砍征讨步采杀攻])伐(?=[?!,.。，？！ ~]|$)"), "吗"),
    (re.compile("今朝"), "今天"),
    (re.compile("明朝"), "明天"),
    (re.compile("啥人"), "谁"),
    (re.compile("哪能"), "怎么"),
    (re.compile("辰光"), "时候"),
    (re.compile("交关"), "很"),
    (re.compile("搿"), "这"),
    (re.compile("小囡"), "小孩"),
    (re.compile("姆妈"), "妈妈"),
    (re.compile("事体"), "事情"),
    (re.compile("面孔"), "脸"),
    (re.compile("打相打"), "打架"),
    (re.compile("吵相骂"), "吵架"),
    (re.compile("下半天"), "下午"),
    (re.compile("上半天"), "上午"),
    # 困 is "sleep" (困觉, 困不着), not trapped.
    (re.compile(r"困(?=觉|不着|勿着|着了|得)"), "睡"),
    (re.compile(r"(?<![追搜找探难千])寻(?![找常求思味觅晚日])"), "找"),
    # 拉勿牢 / 压牢 / 拖牢 = cannot hold / pinned / holding on.
    (re.compile(r"(?<=[压拉拖抓捉揿夹绑关看])(不)?牢"), r"\1住"),
    # 骗脱 / 偷脱 = 骗了 / 偷了; 走脱 = passed away.
    (re.compile("走脱"), "去世"),
    (re.compile(r"(?<=[骗偷跑逃丢掉烧])脱(?![离身险困口])"), "了"),
    # 拨 = give / by (拨人骗了 = 给人骗了), not 拨打 / 拨号.
    (re.compile(r"拨(?=[我你他她人侬伊阿])"), "给"),
    # "好 + verb" proposes: 好贴几张 / 好装几盏 = 可以 (not 好用的, 好看, 不好装).
    (
        re.compile(
            r"(?<![很太真挺最不也还更蛮])好(?=(?:贴|装|挂|放|改|加|派|设|录|拍|搞|请|叫|组织|安排)"
            r"(?![了的得不过]))|(?<![很太真挺最不也还更蛮])好(?=用(?![的了得不]))"
        ),
        "可以",
    ),
)
# Romanised Cantonese, read before the rest in a Cantonese message: 快D黎 快啲嚟, 录D 录啲.
_CANTONESE_PRE: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?<=[\u4e00-\u9fff])[dD](?![a-zA-Z0-9栋座区级号型盘])"), "啲"),
    (re.compile(r"(?<=[快过返出入落上番啲])黎"), "嚟"),
)
# Pinyin initials and spelled-out emergency numbers (voice input writes 幺幺零 / 一一零).
_ABBREVIATIONS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?<![a-z])jc(?![a-z])"), "警察"),
    (re.compile(r"(?<![a-z])zf(?![a-z])"), "政府"),
    (re.compile(r"[一幺][一幺]零"), "110"),
    (re.compile(r"[一幺]二零"), "120"),
    (re.compile(r"[一幺][一幺]九"), "119"),
    # Hong Kong code-switching: "call 999", "call白车"; 999 is Hong Kong's 110.
    (re.compile(r"(?<![a-z])call\s?(?=(了\s?)?(110|119|120|999|救护车|警察|police))"), "打"),
    (re.compile(r"(?<=[打拨报])999(?!\d)|(?<=[打拨报]了)999(?!\d)"), "110"),
)


def normalise(text: str) -> str:
    """Return ``text`` in a canonical form for matching.

    Traditional characters become Simplified (opencc ``t2s``), Cantonese and Taiwan wording
    its Mandarin equivalent (咗 -> 了, 冇 -> 没, 喺 -> 在, 捷运 -> 地铁; in a message written
    in Cantonese also 系 -> 是, 话 -> 说, 仲 -> 还, V紧 -> V着), full-width ASCII and
    punctuation become half-width (NFKC), Latin letters are lower-cased, a few pinyin
    initials (jc, zf) and spelled-out emergency numbers (一一零) are expanded, and runs of
    whitespace collapse to one space.  Emoji are kept: they are a signal for "other".
    """
    simplified = _to_simplified(text)
    if _WU_MARKERS.search(simplified):
        for pat, dst in _WU_CONTEXT:
            simplified = pat.sub(dst, simplified)
    cantonese = _CANTONESE_MARKERS.search(simplified) is not None
    if cantonese:
        for pat, dst in _CANTONESE_PRE:
            simplified = pat.sub(dst, simplified)
    for src, dst in _REGIONAL_WORDS:
        simplified = simplified.replace(src, dst)
    for pat, dst in _REGIONAL_PATTERNS:
        simplified = pat.sub(dst, simplified)
    for pat, north in _NORTHERN:
        simplified = pat.sub(north, simplified)
    if cantonese:
        for pat, dst in _CANTONESE_CONTEXT:
            simplified = pat.sub(dst, simplified)
    # NFKC folds full-width forms (ＡＢＣ，１２３！) and the ideographic space to ASCII.
    # CJK punctuation without a compatibility mapping (。、) is left as is.
    folded = unicodedata.normalize("NFKC", simplified).lower()
    for pat, dst in _ABBREVIATIONS:
        folded = pat.sub(dst, folded)
    return _join_word_spacing(_WS_RE.sub(" ", folded).strip())


# Word-spaced writing: some writers (Mandarin as a second language, voice input read back)
# put a space between most words ("买茶叶 的 客服 叫我 扫码 解冻").  Such a message is joined
# before matching, while ordinary chat, where a space stands for a comma between clauses
# ("喝了点酒 头有点晕 不开车了"), keeps its spaces.  The decision is per message: at least
# ``_SPACED_MIN_TOKENS`` space-separated pieces, most of them one to three characters long.
_SPACED_MIN_TOKENS = 5
_SPACED_SHORT_SHARE = 0.7
_SPACED_JOIN_RE = re.compile(r"(?<=[\u4e00-\u9fff0-9]) (?=[\u4e00-\u9fff0-9])")


def _word_spaced(text: str) -> bool:
    pieces = text.split(" ")
    if len(pieces) < _SPACED_MIN_TOKENS:
        return False
    short = sum(1 for piece in pieces if len(piece) <= 3)
    return short / len(pieces) >= _SPACED_SHORT_SHARE


def _join_word_spacing(text: str) -> str:
    return _SPACED_JOIN_RE.sub("", text) if _word_spaced(text) else text


# ---------------------------------------------------------------------------------------
# Public result type
# ---------------------------------------------------------------------------------------


# A letter of any script (CJK included): text without one has no words to classify.
_WORDS = re.compile(r"[^\W\d_]")


@dataclass(frozen=True)
class Classification:
    """The classifier's verdict on one message."""

    label: str  # one of LABELS
    emergency: bool
    confidence: float  # 0..1, margin of the top label over the runner-up
    unclear: bool  # margin below the lexicon threshold (label is still the best guess)
    scores: dict[str, float]
    matched: tuple[str, ...]  # lexicon entries that fired, e.g. "report:theft"


# ---------------------------------------------------------------------------------------
# Compiled lexicon entries
# ---------------------------------------------------------------------------------------


def _compile_list(patterns: Sequence[str] | str | None, where: str) -> tuple[re.Pattern[str], ...]:
    if patterns is None:
        return ()
    if isinstance(patterns, str):
        patterns = [patterns]
    compiled = []
    for pat in patterns:
        try:
            compiled.append(re.compile(str(pat)))
        except re.error as exc:  # surface the offending entry, not just the regex error
            raise ValueError(f"bad pattern in lexicon entry {where!r}: {pat!r}: {exc}") from exc
    return tuple(compiled)


def _join(patterns: Sequence[re.Pattern[str]]) -> re.Pattern[str] | None:
    """One alternation of many patterns: a single scan instead of one per pattern."""
    if not patterns:
        return None
    # Each alternative is guarded too: where the text passes the outer guard (a digit, say),
    # only the alternatives that can start with that character are attempted.
    return _fast(
        patterns, "|".join(f"(?:{start_guard([p]) or ''}(?:{p.pattern}))" for p in patterns)
    )


def _fast(patterns: Sequence[re.Pattern[str]], source: str | None = None) -> re.Pattern[str]:
    """The alternation of ``patterns`` (or ``source``) behind a lookahead for the characters
    a match can start with.

    It matches exactly what the patterns match, but a position where no match can start is
    dismissed by one character test instead of an attempt at every alternative: scanning a
    long message costs a fraction of what it did (see ``regex_literals.start_guard``).
    """
    if source is None:
        (pattern,) = patterns
        source = pattern.pattern
    guard = start_guard(patterns)
    source = guard_wildcards(source)
    return re.compile(source if guard is None else f"{guard}(?:{source})")


def _needs(patterns: Sequence[re.Pattern[str]]) -> frozenset[str] | None:
    """Strings one of which a match of any of ``patterns`` contains; None when unknown."""
    union: set[str] = set()
    for pat in patterns:
        found = required_literals(pat)
        if found is None:
            return None
        union |= found
    return frozenset(union) if union else None


@lru_cache(maxsize=64)
def _substrings(text: str) -> frozenset[str]:
    # Cached: one message is tested against every entry, in a few masked variants.
    return substrings(text)


# Linear-time helpers.  A message may be 20,000 characters long (the bridge's limit), and
# the scoping below asks "which clause is this position in?" and "where is the next reset
# word?" once per match: answered by a fresh scan each time, that grows with the square of
# the length.  Each is answered from one scan of the text instead.


@lru_cache(maxsize=32)
def _match_bounds(pattern: re.Pattern[str], text: str) -> tuple[list[int], list[int]]:
    """Starts and ends of every match of ``pattern`` (a single-character pattern)."""
    starts: list[int] = []
    ends: list[int] = []
    for m in pattern.finditer(text):
        starts.append(m.start())
        ends.append(m.end())
    return starts, ends


class _NextMatch:
    """``pattern.search(text, pos)`` for queries whose ``pos`` mostly grows.

    A search from ``pos`` tries each start position in turn, and the attempt at a position
    does not depend on ``pos`` (look-behinds and ``^`` see the whole text), so the answer
    found from ``p`` also answers every query in ``[p, start of that match]``, and "no
    match" from ``p`` answers every later query: each character is scanned about once.
    """

    __slots__ = ("_from", "_hit", "pattern", "text")

    def __init__(self, pattern: re.Pattern[str], text: str) -> None:
        self.pattern = pattern
        self.text = text
        self._from: int | None = None
        self._hit: re.Match[str] | None = None

    def __call__(self, pos: int) -> re.Match[str] | None:
        known = self._from is not None and self._from <= pos
        if known and (self._hit is None or pos <= self._hit.start()):
            return self._hit
        self._from = pos
        self._hit = self.pattern.search(self.text, pos)
        return self._hit


class _SpanSet:
    """Membership in a union of ``[lo, hi)`` spans by bisection instead of a linear scan."""

    __slots__ = ("_reach", "_starts")

    def __init__(self, *groups: Sequence[tuple[int, int]]) -> None:
        spans = sorted(span for group in groups for span in group)
        self._starts = [lo for lo, _ in spans]
        reach: list[int] = []  # furthest end among the spans starting at or before each one
        for _, hi in spans:
            reach.append(max(hi, reach[-1]) if reach else hi)
        self._reach = reach

    def __contains__(self, pos: int) -> bool:
        i = bisect_right(self._starts, pos)
        return i > 0 and self._reach[i - 1] > pos


_CONCEPT_RE = re.compile(r"\{([a-z_]+)\}")


def _expand_concepts(data: Mapping[str, Any]) -> dict[str, Any]:
    """Splice the lexicon's ``concepts`` into every pattern that names them as ``{name}``.

    Concepts let the emergency layer be written as combinations ("{person} ... {harm_state}")
    instead of one regex per phrasing.  Concepts may use earlier-resolved concepts; a cycle or
    an unknown name is a lexicon error, reported with the name.
    """
    raw = {str(k): str(v) for k, v in (data.get("concepts") or {}).items()}
    resolved: dict[str, str] = {}

    def resolve(name: str, stack: tuple[str, ...]) -> str:
        if name in resolved:
            return resolved[name]
        if name not in raw:
            raise ValueError(f"lexicon pattern uses unknown concept {{{name}}}")
        if name in stack:
            raise ValueError(f"lexicon concept cycle: {' -> '.join((*stack, name))}")
        body = _CONCEPT_RE.sub(lambda m: resolve(m.group(1), (*stack, name)), raw[name])
        resolved[name] = f"(?:{body})"
        return resolved[name]

    def walk(obj: Any) -> Any:
        if isinstance(obj, str):
            return _CONCEPT_RE.sub(lambda m: resolve(m.group(1), ()), obj)
        if isinstance(obj, list):
            return [walk(x) for x in obj]
        if isinstance(obj, Mapping):
            return {k: walk(v) for k, v in obj.items()}
        return obj

    # ``settings`` holds patterns too (label_mask, model_veto): a concept named there must be
    # spliced like anywhere else, or ``{kin}`` would be matched as the literal text "{kin}".
    pattern_sections = ("settings", "emergency", "labels", "modifiers", "safety_net")
    return {k: walk(v) if k in pattern_sections else v for k, v in data.items()}


# Replacement for masked spans: same length (positions and clause breaks stay put), matched
# by no lexicon pattern, and not a clause break.
_MASK_CHAR = "\u25a1"  # □


@dataclass(frozen=True)
class _Entry:
    """One lexicon entry: fires when any ``any`` pattern (and any ``with``) matches."""

    name: str
    weight: float
    any: tuple[re.Pattern[str], ...]
    with_: tuple[re.Pattern[str], ...] = ()
    unless: tuple[re.Pattern[str], ...] = ()
    max_len: int | None = None
    negatable: bool = True
    hint: str | None = None  # emergency entries only
    ignore_past: bool = False  # emergency entries only
    ignore_habitual: bool = False  # emergency entries only
    # One alternation per pattern list: most entries match nothing in a given message, and a
    # single scan that says so is far cheaper than one scan per pattern. The per-pattern loop
    # still decides (negation and blockers apply per match) whenever the probe finds something.
    # Before even that: strings one of which any match must contain (handlers.regex_literals).
    needs: frozenset[str] | None = field(init=False, default=None, compare=False)
    with_needs: frozenset[str] | None = field(init=False, default=None, compare=False)
    probe: re.Pattern[str] | None = field(init=False, default=None, compare=False)
    with_probe: re.Pattern[str] | None = field(init=False, default=None, compare=False)
    unless_probe: re.Pattern[str] | None = field(init=False, default=None, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "needs", _needs(self.any))
        object.__setattr__(self, "with_needs", _needs(self.with_))
        object.__setattr__(self, "probe", _join(self.any))
        object.__setattr__(self, "with_probe", _join(self.with_))
        object.__setattr__(self, "unless_probe", _join(self.unless))

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], where: str) -> _Entry:
        name = str(raw["name"])
        where = f"{where}:{name}"
        hint = raw.get("hint")
        if hint is not None and hint not in _EMERGENCY_LABELS:
            raise ValueError(f"{where}: hint must be one of {_EMERGENCY_LABELS}, got {hint!r}")
        return cls(
            name=name,
            weight=float(raw.get("weight", 0.0)),
            any=_compile_list(raw.get("any"), where),
            with_=_compile_list(raw.get("with"), where),
            unless=_compile_list(raw.get("unless"), where),
            max_len=raw.get("max_len"),
            negatable=bool(raw.get("negatable", True)),
            hint=hint,
            ignore_past=bool(raw.get("ignore_past", False)),
            ignore_habitual=bool(raw.get("ignore_habitual", False)),
        )


@dataclass(frozen=True)
class _Modifier:
    name: str
    any: tuple[re.Pattern[str], ...]
    scale: dict[str, float]


@dataclass(frozen=True)
class _NetCategory:
    """One danger category of the safety net (injury, violence, fire, water, ...).

    ``tiers`` pairs a weight with a pattern of cue words: 3 = enough on its own, 2 = needs
    one corroborating cue, 1 = needs two.  ``subject`` (optional) replaces the global subject
    for this category and, with ``require_subject``, must be present for it to count at all
    (a missing *phone* is not a missing *child*).
    """

    name: str
    hint: str | None  # None: the content decides report vs help (救命 follows both)
    tiers: tuple[tuple[float, re.Pattern[str]], ...]
    unless: tuple[re.Pattern[str], ...] = ()
    subject: re.Pattern[str] | None = None
    require_subject: bool = False
    # Only counts with an urgency / ongoing cue: a break-in is an emergency while it lasts,
    # "小卖部被人撬门偷东西了" is a theft report.
    require_present: bool = False
    ignore_past: bool = False
    ignore_habitual: bool = False


@dataclass(frozen=True)
class _SafetyNet:
    """Recall-first co-occurrence scorer that runs next to the precise emergency entries.

    Score = sum over categories of (best cue weight, +1 if a second distinct cue of weight
    >= 2 agrees, capped) + ``subject_weight`` if a person/property is named + ``present_weight``
    if an urgency / ongoing / fear cue is present.  It fires at ``threshold``.  Danger words
    are short morphemes (刀, 血, 烧, 淹, 塌, 拖), so wording never seen before still lands in a
    category; precision comes from needing corroboration and from the shared scoped blockers.
    """

    categories: tuple[_NetCategory, ...]
    subject: re.Pattern[str]
    present: re.Pattern[str]
    mask: re.Pattern[str] | None
    negators: re.Pattern[str]  # in addition to the emergency negators ("叫他砍也不砍")
    discovered: re.Pattern[str]  # "回家发现门被撬了": over before it was seen, like a past word
    advice: re.Pattern[str]  # "第一步是关阀门还是开窗?": a how-to question, not an incident
    threshold: float = 3.0
    secondary_weight: float = 0.5
    subject_weight: float = 0.5
    present_weight: float = 1.0
    category_cap: float = 3.0
    second_cue_bonus: float = 1.0


@dataclass(frozen=True)
class _EmergencyResult:
    fired: tuple[_Entry, ...]  # entries that signal a danger now
    past_only: tuple[_Entry, ...]  # entries whose only blocker is past tense
    # Safety-net (category, hint, score) triples, strongest first, if the net fired.
    net: tuple[tuple[str, str | None, float], ...] = ()


def _build_net(raw: Mapping[str, Any] | None) -> _SafetyNet | None:
    """Compile the lexicon's ``safety_net`` section (absent -> no net)."""
    if not raw:
        return None
    where = "safety_net"
    categories = []
    for cat in raw.get("categories", []) or []:
        name = str(cat["name"])
        hint = cat.get("hint")
        if hint is not None and hint not in _EMERGENCY_LABELS:
            raise ValueError(f"{where}:{name}: hint must be one of {_EMERGENCY_LABELS}")
        tiers = []
        for tier in cat.get("tiers", []) or []:
            pats = _compile_list(tier.get("any"), f"{where}:{name}")
            joined = _join(pats)
            if joined is not None:
                tiers.append((float(tier["weight"]), joined))
        subject = cat.get("subject")
        categories.append(
            _NetCategory(
                name=name,
                hint=hint,
                # Strongest tier first, so the best cue is found first.
                tiers=tuple(sorted(tiers, key=lambda t: -t[0])),
                unless=_compile_list(cat.get("unless"), f"{where}:{name}"),
                subject=_join(_compile_list(subject, f"{where}:{name}")) if subject else None,
                require_subject=bool(cat.get("require_subject", False)),
                require_present=bool(cat.get("require_present", False)),
                ignore_past=bool(cat.get("ignore_past", False)),
                ignore_habitual=bool(cat.get("ignore_habitual", False)),
            )
        )
    never = re.compile(r"(?!x)x")
    subject = _join(_compile_list(raw.get("subject"), f"{where}:subject")) or never
    present = _join(_compile_list(raw.get("present"), f"{where}:present")) or never
    return _SafetyNet(
        categories=tuple(categories),
        subject=subject,
        present=present,
        mask=_join(_compile_list(raw.get("mask"), f"{where}:mask")),
        negators=_join(_compile_list(raw.get("negators"), f"{where}:negators")) or never,
        discovered=_join(_compile_list(raw.get("discovered"), f"{where}:discovered")) or never,
        advice=_join(_compile_list(raw.get("advice"), f"{where}:advice")) or never,
        threshold=float(raw.get("threshold", 3.0)),
        secondary_weight=float(raw.get("secondary_weight", 0.5)),
        subject_weight=float(raw.get("subject_weight", 0.5)),
        present_weight=float(raw.get("present_weight", 1.0)),
        category_cap=float(raw.get("category_cap", 3.0)),
        second_cue_bonus=float(raw.get("second_cue_bonus", 1.0)),
    )


# ---------------------------------------------------------------------------------------
# Classifier
# ---------------------------------------------------------------------------------------


@dataclass
class Classifier:
    """Lexicon-driven classifier.  Build it with :meth:`from_file` or :meth:`from_dict`."""

    entries: dict[str, tuple[_Entry, ...]]
    emergency_entries: tuple[_Entry, ...]
    modifiers: tuple[_Modifier, ...]
    unclear_margin: float
    prior: float
    no_signal_confidence: float
    negation_window: int
    clause_breaks: re.Pattern[str]
    label_negators: re.Pattern[str]
    emergency_negators: re.Pattern[str]
    past: re.Pattern[str]
    now: re.Pattern[str]
    hypothetical: re.Pattern[str]
    publicity: re.Pattern[str]
    resolved: re.Pattern[str]
    emergency_hint_weight: float
    past_hint_weight: float
    past_hint_labels: frozenset[str]
    tie_break: tuple[str, ...] = field(default=LABELS)
    # Emergency-layer scoping (see the module docstring).  Defaults match nothing, so a
    # lexicon without these keys behaves like plain keyword matching.
    habitual: re.Pattern[str] = field(default=re.compile(r"(?!x)x"))
    # Present-time words that end a past / habitual reach only from the next clause on:
    # "昨晚又打到凌晨" is last night again, "昨天被偷过 又有人在撬门" is now.
    now_next_clause: re.Pattern[str] = field(default=re.compile(r"(?!x)x"))
    local: re.Pattern[str] = field(default=re.compile(r"(?!x)x"))
    urgent: re.Pattern[str] = field(default=re.compile(r"(?!x)x"))
    playful: re.Pattern[str] = field(default=re.compile(r"(?!x)x"))
    reported_speech: re.Pattern[str] = field(default=re.compile(r"(?!x)x"))
    mask: re.Pattern[str] | None = None
    label_mask: re.Pattern[str] | None = None
    net: _SafetyNet | None = None
    # Learned second opinion; None = rules only (what from_dict builds).
    model: NgramModel | None = None
    model_emergency_threshold: float = 0.62
    model_label_min_gap: float = 10.0
    model_veto: re.Pattern[str] | None = None
    # Veto the model's emergency when the message is told wholly in the past or as a habit
    # (a past / habitual marker, and no present-time, urgency or ongoing cue anywhere).
    model_veto_stale: bool = False
    # Clause breaks are single characters (the lexicon's are): clauses are then found by
    # bisecting one scan of the text (see _clause_start).
    _simple_breaks: bool = field(init=False, default=False, repr=False)

    def __post_init__(self) -> None:
        self._simple_breaks = single_character(self.clause_breaks)

    # -- construction -------------------------------------------------------------------

    @classmethod
    def from_file(
        cls, path: Path | None = None, model_path: Path | bool | None = None
    ) -> Classifier:
        """Load the lexicon YAML (default: ``lexicon.yaml`` next to this module) and the
        n-gram model (default: ``ngram_model.json`` next to it; ``model_path=False``
        gives the rules alone)."""
        lexicon_path = Path(path) if path is not None else DEFAULT_LEXICON
        with lexicon_path.open(encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
        clf = cls.from_dict(data)
        if model_path is not False:
            clf.model = NgramModel.from_file(Path(model_path) if model_path else DEFAULT_MODEL)
        return clf

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Classifier:
        """Build a classifier from an already-parsed lexicon mapping."""
        data = _expand_concepts(data)
        settings = data.get("settings", {})
        emergency = data.get("emergency", {})
        labels_raw = data.get("labels", {})

        unknown = set(labels_raw) - set(LABELS)
        if unknown:
            raise ValueError(f"lexicon defines unknown labels: {sorted(unknown)}")
        entries = {
            label: tuple(_Entry.from_dict(e, label) for e in labels_raw.get(label, []) or [])
            for label in LABELS
        }
        modifiers = tuple(
            _Modifier(
                name=str(m["name"]),
                any=_compile_list(m.get("any"), f"modifier:{m['name']}"),
                scale={str(k): float(v) for k, v in (m.get("scale") or {}).items()},
            )
            for m in data.get("modifiers", []) or []
        )
        tie_break = tuple(settings.get("tie_break", LABELS))
        if set(tie_break) != set(LABELS):
            raise ValueError("settings.tie_break must list every label exactly once")

        def rx(value: str | None, default: str) -> re.Pattern[str]:
            return _fast([re.compile(value if value else default)])

        never = r"(?!x)x"  # matches nothing: an absent blocker blocks nothing
        return cls(
            entries=entries,
            emergency_entries=tuple(
                _Entry.from_dict(e, "emergency") for e in emergency.get("entries", []) or []
            ),
            modifiers=modifiers,
            unclear_margin=float(settings.get("unclear_margin", 0.15)),
            prior=float(settings.get("prior", 1.0)),
            no_signal_confidence=float(settings.get("no_signal_confidence", 0.2)),
            negation_window=int(settings.get("negation_window", 4)),
            clause_breaks=re.compile(settings.get("clause_breaks") or r"[,.!?;:，。！？；：、\n]"),
            label_negators=rx(settings.get("label_negators"), never),
            emergency_negators=rx(emergency.get("negators"), never),
            past=rx(emergency.get("past"), never),
            now=rx(emergency.get("now"), never),
            hypothetical=rx(emergency.get("hypothetical"), never),
            publicity=rx(emergency.get("publicity"), never),
            resolved=rx(emergency.get("resolved"), never),
            emergency_hint_weight=float(settings.get("emergency_hint_weight", 3.0)),
            past_hint_weight=float(settings.get("past_hint_weight", 0.0)),
            past_hint_labels=frozenset(settings.get("past_hint_labels", ["report"])),
            tie_break=tie_break,
            habitual=rx(emergency.get("habitual"), never),
            now_next_clause=rx(emergency.get("now_next_clause"), never),
            local=rx(emergency.get("local"), never),
            urgent=rx(emergency.get("urgent"), never),
            playful=rx(emergency.get("playful"), never),
            reported_speech=rx(emergency.get("reported_speech"), never),
            mask=_join(_compile_list(emergency.get("mask"), "emergency:mask")),
            label_mask=_join(_compile_list(settings.get("label_mask"), "settings:label_mask")),
            net=_build_net(data.get("safety_net")),
            model_emergency_threshold=float(settings.get("model_emergency_threshold", 0.62)),
            model_label_min_gap=float(settings.get("model_label_min_gap", 10.0)),
            model_veto=_join(_compile_list(settings.get("model_veto"), "settings:model_veto")),
            model_veto_stale=bool(settings.get("model_veto_stale", False)),
        )

    # -- matching helpers ---------------------------------------------------------------

    def _clause_start(self, text: str, pos: int) -> int:
        """Index where the clause containing ``pos`` starts."""
        if self._simple_breaks:
            # One indexed scan per text, then a bisection per question.
            ends = _match_bounds(self.clause_breaks, text)[1]
            i = bisect_right(ends, pos)
            return ends[i - 1] if i else 0
        start = 0
        for m in self.clause_breaks.finditer(text, 0, pos):
            start = m.end()
        return start

    def _clause_span(self, text: str, pos: int) -> tuple[int, int]:
        start = self._clause_start(text, pos)
        if self._simple_breaks:
            starts = _match_bounds(self.clause_breaks, text)[0]
            i = bisect_left(starts, pos)
            return start, (starts[i] if i < len(starts) else len(text))
        m = self.clause_breaks.search(text, pos)
        return start, (m.start() if m else len(text))

    def _negated(self, text: str, start: int, negators: re.Pattern[str]) -> bool:
        """True if a negator stands within the window before ``start`` in the same clause."""
        lo = max(self._clause_start(text, start), start - self.negation_window)
        # search(pos, endpos) keeps look-behinds working across `lo` (e.g. 是不是).
        return negators.search(text, lo, start) is not None

    def _first_match(
        self,
        text: str,
        patterns: Iterable[re.Pattern[str]],
        negators: re.Pattern[str] | None,
        blocked: Callable[[int], bool] | None = None,
    ) -> re.Match[str] | None:
        """First match of any pattern that is neither negated nor ``blocked`` at its start."""
        for pat in patterns:
            for m in pat.finditer(text):
                if negators is not None and self._negated(text, m.start(), negators):
                    continue
                if blocked is not None and blocked(m.start()):
                    continue
                return m
        return None

    def _entry_fires(
        self,
        entry: _Entry,
        text: str,
        negators: re.Pattern[str],
        blocked: Callable[[int], bool] | None = None,
    ) -> bool:
        if entry.max_len is not None and len(text) > entry.max_len:
            return False
        if entry.needs is not None and entry.needs.isdisjoint(_substrings(text)):
            return False
        if entry.with_needs is not None and entry.with_needs.isdisjoint(_substrings(text)):
            return False
        if entry.probe is None or entry.probe.search(text) is None:
            return False
        if entry.unless_probe is not None and entry.unless_probe.search(text):
            return False
        if entry.with_probe is not None and entry.with_probe.search(text) is None:
            return False
        neg = negators if entry.negatable else None
        if self._first_match(text, entry.any, neg, blocked) is None:
            return False
        return not entry.with_ or self._first_match(text, entry.with_, neg) is not None

    # -- emergency layer ----------------------------------------------------------------

    @staticmethod
    def _mask(text: str, mask: re.Pattern[str] | None) -> str:
        """Blank out spans that only look like cues (热死了, 火锅, 杀价, 考砸了)."""
        if mask is None:
            return text
        return mask.sub(lambda m: _MASK_CHAR * len(m.group()), text)

    def _scopes(
        self,
        text: str,
        marker: re.Pattern[str],
        reset: re.Pattern[str],
        next_clause: bool = False,
        reset_next_clause: re.Pattern[str] | None = None,
    ) -> list[tuple[int, int]]:
        """Spans covered by ``marker``: from the start of its clause to the next ``reset``.

        A time word such as 昨天 governs what follows it ("昨天晚上村口有人打架") but not a
        later "现在又拿着刀来了"; the reset (present-time or local words) ends its reach.
        With ``next_clause`` the reset only counts from the following clause on: a media
        story names its own scene ("新闻上看到外省有人在幼儿园门口砍人"), and that 门口 is
        part of the story, not the writer's doorstep.  ``reset_next_clause`` holds resets
        that always count from the following clause on ("昨晚又打到凌晨": that 又 is last
        night's).
        """
        spans: list[tuple[int, int]] = []
        # Markers come in order, so the reset searches start further on each time: memoised,
        # the whole text is scanned about once, not once per marker.
        next_reset = _NextMatch(reset, text)
        next_weak = _NextMatch(reset_next_clause, text) if reset_next_clause else None
        for m in marker.finditer(text):
            if spans and m.start() < spans[-1][1]:
                continue  # already covered by the previous marker's span
            origin = self._clause_span(text, m.end())[1] if next_clause else m.end()
            r = next_reset(origin)
            end = r.start() if r else len(text)
            if next_weak is not None:
                w = next_weak(self._clause_span(text, m.end())[1])
                if w is not None:
                    end = min(end, w.start())
            spans.append((self._clause_start(text, m.start()), end))
        return spans

    def _hypothetical_at(
        self, text: str, pos: int, memo: dict[tuple[int, int], bool] | None = None
    ) -> bool:
        """True if the clause around ``pos`` is a hypothetical / how-to question.

        A conditional inside reported speech is a threat, not a hypothetical:
        "他说要是报警就弄死我" stays an emergency.  ``memo`` keeps the answer per clause (one
        scan of each clause however many matches it holds).
        """
        span = self._clause_span(text, pos)
        if memo is not None and span in memo:
            return memo[span]
        lo, hi = span
        h = self.hypothetical.search(text, lo, hi)
        answer = h is not None and self.reported_speech.search(text, lo, h.start()) is None
        if memo is not None:
            memo[span] = answer
        return answer

    def _emergency(self, text: str) -> _EmergencyResult:
        raw = text
        text = self._mask(text, self.mask)
        # Explicit urgency ("快来人", "救命", "赶紧报警") means the writer is in it now:
        # publicity, past, playful and "already resolved" blockers no longer apply.
        urgent = self.urgent.search(text) is not None
        # Jokes are read on the unmasked text: the mask blanks "笑死" as hyperbole, yet a
        # message that opens with it is a joke.
        playful = self.playful.search(text) or self.playful.search(raw)
        if not urgent and (self.resolved.search(text) or playful):
            return _EmergencyResult((), ())
        none: list[tuple[int, int]] = []
        publicity = (
            none if urgent else self._scopes(text, self.publicity, self.local, next_clause=True)
        )
        weak_now = self.now_next_clause
        past = none if urgent else self._scopes(text, self.past, self.now, False, weak_now)
        habitual = none if urgent else self._scopes(text, self.habitual, self.now, False, weak_now)

        hypothetical_memo: dict[tuple[int, int], bool] = {}
        publicity_set = _SpanSet(publicity)
        stale_sets = {
            (True, False): _SpanSet(),
            (True, True): _SpanSet(),
            (False, True): _SpanSet(past),
            (False, False): _SpanSet(past, habitual),
        }

        def excluded(pos: int) -> bool:
            return pos in publicity_set or self._hypothetical_at(text, pos, hypothetical_memo)

        def stale_for(ignore_past: bool, ignore_habitual: bool) -> Callable[[int], bool]:
            spans = stale_sets[(ignore_past, ignore_habitual)]
            return lambda pos: excluded(pos) or pos in spans

        fired: list[_Entry] = []
        past_only: list[_Entry] = []
        for entry in self.emergency_entries:
            if not self._entry_fires(entry, text, self.emergency_negators, excluded):
                continue
            spans = none if entry.ignore_past else past
            if not entry.ignore_past and not entry.ignore_habitual:
                spans = past + habitual
            # A match outside every past span makes it current; otherwise it is only a
            # past report (still worth a "report" hint, but no emergency).
            stale = stale_for(entry.ignore_past, entry.ignore_habitual)
            if not spans or self._entry_fires(entry, text, self.emergency_negators, stale):
                fired.append(entry)
            else:
                past_only.append(entry)
        net: tuple[tuple[str, str | None, float], ...] = ()
        if self.net is not None and not fired:
            net = self._net(text, stale_for, hypothetical_memo)
        return _EmergencyResult(tuple(fired), tuple(past_only), net)

    def _net(
        self,
        text: str,
        stale_for: Callable[[bool, bool], Callable[[int], bool]],
        hypothetical_memo: dict[tuple[int, int], bool] | None = None,
    ) -> tuple[tuple[str, str | None, float], ...]:
        """Run the safety net; return the contributing categories if it fires, else ()."""
        net = self.net
        assert net is not None
        # Urgency / fear is read before the net's own mask: "快打120" must stay a cue even
        # though the mask blanks 打 + number as a harmless phone call.
        present = any(
            not self._hypothetical_at(text, m.start(), hypothetical_memo)
            for m in net.present.finditer(text)
        )
        if not present and net.advice.search(text):
            return ()
        text = self._mask(text, net.mask)
        # "回家发现门被撬了" reports something already over; a later present cue ("屋里还有
        # 动静") ends that reach, exactly like 昨天 ... 现在.
        discovered = _SpanSet(self._scopes(text, net.discovered, net.present))

        def negated(pos: int) -> bool:
            return self._negated(text, pos, self.emergency_negators) or self._negated(
                text, pos, net.negators
            )

        cats: list[tuple[str, str | None, float]] = []
        for cat in net.categories:
            if cat.require_subject and (cat.subject is None or not cat.subject.search(text)):
                continue
            if cat.require_present and not present:
                continue
            if any(p.search(text) for p in cat.unless):
                continue
            stale = stale_for(cat.ignore_past, cat.ignore_habitual)
            hits: list[tuple[float, int, int, str]] = []
            for weight, pat in cat.tiers:
                for m in pat.finditer(text):
                    pos = m.start()
                    if negated(pos) or stale(pos):
                        continue
                    if not cat.ignore_past and pos in discovered:
                        continue
                    hits.append((weight, m.start(), m.end(), m.group()))
            if not hits:
                continue
            best = max(hits, key=lambda h: h[0])
            # A second cue of the same kind at another place, in other words (煤气 + 嘶嘶,
            # 撬 + 门把手), corroborates; one word repeated or nested in the first does not.
            others = [
                h[0] for h in hits if h[3] != best[3] and (h[2] <= best[1] or h[1] >= best[2])
            ]
            bonus = 0.0
            # Weak words only back up a strong cue: 河 + 钓鱼 or 门 + 锁 stay weak.
            if others and best[0] >= 2:
                bonus = net.second_cue_bonus * (1.0 if max(others) >= 2 else 0.5)
            cats.append((cat.name, cat.hint, min(net.category_cap, best[0] + bonus)))
        if not cats:
            return ()
        cats.sort(key=lambda c: -c[2])
        # Other categories corroborate at a discount: two weak words of unrelated kinds
        # (树倒了 + 把路堵了) are much weaker evidence than two of the same kind.
        total = cats[0][2] + net.secondary_weight * sum(c[2] for c in cats[1:])
        if net.subject.search(text):
            total += net.subject_weight
        if present:
            total += net.present_weight
        return tuple(cats) if total >= net.threshold else ()

    # -- classification -----------------------------------------------------------------

    def classify(self, text: str) -> Classification:
        """Classify one chat message."""
        norm = normalise(text)
        if not _WORDS.search(norm):
            # Digits and signs only: a phone number answering an officer, a code, "110". There
            # is nothing to read; the n-gram model, fed digits, would guess at random.
            scores = dict.fromkeys(LABELS, 0.0)
            return Classification("other", False, 1.0, False, scores, ("forced:no_words",))
        result = self._classify_rules(norm)
        if self.model is None:
            return result
        return self._second_opinion(result, norm)

    def _second_opinion(self, result: Classification, norm: str) -> Classification:
        """Combine the rules' verdict with the n-gram model's (see the module docstring)."""
        pred = self.model.predict_normalised(norm)  # type: ignore[union-attr]
        probs = pred.label_probs
        matched = list(result.matched)
        label, emergency = result.label, result.emergency
        confidence, unclear = result.confidence, result.unclear
        if not emergency and pred.emergency_prob >= self.model_emergency_threshold:
            if self._model_vetoed(norm):
                matched.append("model:vetoed")
            else:
                emergency = True
                matched.append("model:emergency")
        rule_fired = any(m.split(":", 1)[0] in LABELS for m in result.matched)
        model_label = max(LABELS, key=lambda lb: (probs[lb], -LABELS.index(lb)))
        if (
            (unclear or not rule_fired)
            and model_label != label
            and pred.label_gap >= self.model_label_min_gap
            and (model_label in _EMERGENCY_LABELS or not emergency)
        ):
            label = model_label
            confidence, unclear = round(probs[label], 3), False
            matched.append("model:label")
        if emergency and label not in _EMERGENCY_LABELS:
            # Only when the model added the emergency to a question, proposal, dispute or
            # chatter: a danger-now message goes to report or help, the model picks which.
            label = "report" if probs["report"] > probs["help"] else "help"
            matched.append(f"forced:{label}")
        if (label, emergency) == (result.label, result.emergency):
            return result
        return Classification(
            label=label,
            emergency=emergency,
            confidence=confidence,
            unclear=unclear,
            scores=result.scores,
            matched=tuple(matched),
        )

    def _model_vetoed(self, norm: str) -> bool:
        """Known-harmless, joking or already-resolved wording: the model may not add an
        emergency (the same message-wide blockers the rules apply to themselves)."""
        if self.model_veto is not None and self.model_veto.search(norm):
            return True
        masked = self._mask(norm, self.mask)
        urgent = self.urgent.search(masked) is not None
        harmless = self.resolved.search(norm) or self.playful.search(norm)
        if harmless and not urgent:
            return True
        if not self.model_veto_stale or urgent:
            return False
        # "每次喝完酒都开车回来 昨晚又是": the rules' past / habitual blockers, message-wide.
        # Any present-time word ("现在", "刚才", "还在") or ongoing cue keeps the model's say.
        stale = self.past.search(masked) or self.habitual.search(masked)
        present = (
            self.now.search(masked)
            or self.now_next_clause.search(masked)
            or (self.net is not None and self.net.present.search(masked))
        )
        return bool(stale) and not present

    def _classify_rules(self, norm: str) -> Classification:
        """The rule-based verdict on already-normalised text."""
        matched: list[str] = []
        scores = dict.fromkeys(LABELS, 0.0)

        emergency = self._emergency(norm)
        # Each hinted label is credited once, however many emergency entries point at it:
        # several overlapping views of one injury ("injured", "crash_injury") are one piece
        # of evidence, and must not outvote the label cue that decides report vs help
        # (a hit-and-run is a report even though someone lies injured).
        for entry in emergency.fired:
            matched.append(f"emergency:{entry.name}")
        for hint in {e.hint for e in emergency.fired if e.hint}:
            scores[hint] += self.emergency_hint_weight
        if emergency.net:
            # Only the safety net saw a danger: credit the strongest hinted category once.
            matched.extend(f"net:{name}" for name, _, _ in emergency.net)
            # A crime category with real weight (violence, abduction, threat, intrusion)
            # decides: a robbery that left someone bleeding is still a report.
            crime = any(h == "report" and score >= 2 for _, h, score in emergency.net)
            hint = "report" if crime else next((h for _, h, _ in emergency.net if h), None)
            if hint:
                scores[hint] += self.emergency_hint_weight
        for entry in emergency.past_only:
            matched.append(f"past:{entry.name}")
        for hint in {e.hint for e in emergency.past_only} & self.past_hint_labels:
            scores[hint] += self.past_hint_weight
        is_emergency = bool(emergency.fired or emergency.net)

        # Label cues see their own, smaller mask: "吵死了" must stay a noise complaint.
        label_text = self._mask(norm, self.label_mask)
        for label in LABELS:
            for entry in self.entries[label]:
                if self._entry_fires(entry, label_text, self.label_negators):
                    scores[label] += entry.weight
                    matched.append(f"{label}:{entry.name}")

        for mod in self.modifiers:
            if any(p.search(label_text) for p in mod.any):
                matched.append(f"modifier:{mod.name}")
                for label, factor in mod.scale.items():
                    if label in scores:
                        scores[label] *= factor

        scores = {k: round(v, 4) for k, v in scores.items()}
        total = sum(scores.values())
        if total <= 0:
            # Nothing fired: chatter by default, low confidence, but not "unclear" —
            # there is nothing to clarify.
            label = "other"
            if is_emergency:  # only possible if an emergency entry has no hint
                label = "help"
            return Classification(
                label=label,
                emergency=is_emergency,
                confidence=self.no_signal_confidence,
                unclear=False,
                scores=scores,
                matched=tuple(matched),
            )

        rank = {label: i for i, label in enumerate(self.tie_break)}
        ordered = sorted(LABELS, key=lambda lb: (-scores[lb], rank[lb]))
        label = ordered[0]
        if is_emergency and label not in _EMERGENCY_LABELS:
            # Never file a danger-now message as a question, proposal or chatter.
            hints = [e.hint for e in emergency.fired] + [hint for _, hint, _ in emergency.net]
            label = self._emergency_label(scores, hints)
            matched.append(f"forced:{label}")

        denom = total + self.prior
        runner_up = max(scores[lb] for lb in LABELS if lb != label)
        margin = max(0.0, (scores[label] - runner_up) / denom)
        confidence = round(min(1.0, margin), 3)
        return Classification(
            label=label,
            emergency=is_emergency,
            confidence=confidence,
            unclear=margin < self.unclear_margin,
            scores=scores,
            matched=tuple(matched),
        )

    @staticmethod
    def _emergency_label(scores: Mapping[str, float], hints: Sequence[str | None]) -> str:
        """Choose report/help for an emergency whose best label was something else."""
        if scores["report"] != scores["help"]:
            return max(_EMERGENCY_LABELS, key=lambda lb: scores[lb])
        for hint in hints:
            if hint:
                return hint
        return "help"


# ---------------------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LabelStats:
    """Precision / recall / F1 for one label."""

    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class EvalReport:
    """Metrics of a classifier on a labelled set of messages."""

    total: int
    accuracy: float
    per_label: dict[str, LabelStats]
    confusion: dict[str, dict[str, int]]  # confusion[gold][pred] -> count
    emergency_precision: float
    emergency_recall: float
    emergency_support: int
    missed_emergencies: list[str]
    false_alarms: list[str]
    mislabelled: list[tuple[str, str, str]]  # (text, gold, predicted)

    def format(self) -> str:
        """Render a human-readable report."""
        lines = [
            f"messages: {self.total}",
            f"accuracy: {self.accuracy:.3f}",
            "",
            f"{'label':<13}{'precision':>10}{'recall':>8}{'f1':>7}{'support':>9}",
        ]
        for label in LABELS:
            s = self.per_label[label]
            lines.append(
                f"{label:<13}{s.precision:>10.3f}{s.recall:>8.3f}{s.f1:>7.3f}{s.support:>9d}"
            )
        lines += ["", "confusion matrix (rows = gold, columns = predicted):"]
        abbrev = {lb: lb[:5] for lb in LABELS}
        lines.append(" " * 13 + "".join(f"{abbrev[lb]:>7}" for lb in LABELS))
        for gold in LABELS:
            row = "".join(f"{self.confusion[gold][pred]:>7d}" for pred in LABELS)
            lines.append(f"{gold:<13}{row}")
        lines += [
            "",
            f"emergency precision: {self.emergency_precision:.3f}",
            f"emergency recall:    {self.emergency_recall:.3f}"
            f"  ({self.emergency_support} gold emergencies)",
            f"missed emergencies ({len(self.missed_emergencies)}):",
        ]
        lines += [f"  - {t}" for t in self.missed_emergencies] or ["  (none)"]
        lines.append(f"false-alarm emergencies ({len(self.false_alarms)}):")
        lines += [f"  - {t}" for t in self.false_alarms] or ["  (none)"]
        lines.append(f"mislabelled ({len(self.mislabelled)}):")
        lines += [f"  - [{g} -> {p}] {t}" for t, g, p in self.mislabelled] or ["  (none)"]
        return "\n".join(lines)


def _ratio(num: int, den: int, empty: float) -> float:
    return num / den if den else empty


def evaluate(classifier: Classifier, rows: Iterable[Mapping[str, Any]]) -> EvalReport:
    """Classify every row (``{"text", "label", "emergency"}``) and compute metrics.

    Precision of a label nobody predicted, and recall of a label with no gold examples,
    are reported as 1.0 (nothing was got wrong); the same goes for emergency figures.
    """
    confusion = {g: dict.fromkeys(LABELS, 0) for g in LABELS}
    missed: list[str] = []
    false_alarms: list[str] = []
    mislabelled: list[tuple[str, str, str]] = []
    correct = total = tp_em = gold_em = pred_em = 0
    for row in rows:
        text, gold = str(row["text"]), str(row["label"])
        if gold not in LABELS:
            raise ValueError(f"unknown gold label {gold!r} for {text!r}")
        gold_emergency = bool(row.get("emergency", False))
        result = classifier.classify(text)
        total += 1
        confusion[gold][result.label] += 1
        if result.label == gold:
            correct += 1
        else:
            mislabelled.append((text, gold, result.label))
        gold_em += gold_emergency
        pred_em += result.emergency
        if gold_emergency and result.emergency:
            tp_em += 1
        elif gold_emergency:
            missed.append(text)
        elif result.emergency:
            false_alarms.append(text)

    per_label: dict[str, LabelStats] = {}
    for label in LABELS:
        tp = confusion[label][label]
        support = sum(confusion[label].values())
        predicted = sum(confusion[g][label] for g in LABELS)
        precision = _ratio(tp, predicted, 1.0)
        recall = _ratio(tp, support, 1.0)
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_label[label] = LabelStats(precision, recall, f1, support)

    return EvalReport(
        total=total,
        accuracy=_ratio(correct, total, 0.0),
        per_label=per_label,
        confusion=confusion,
        emergency_precision=_ratio(tp_em, pred_em, 1.0),
        emergency_recall=_ratio(tp_em, gold_em, 1.0),
        emergency_support=gold_em,
        missed_emergencies=missed,
        false_alarms=false_alarms,
        mislabelled=mislabelled,
    )
