"""The rule layer: what the trained model may not decide alone.

Each rule is a handful of readable patterns over *normalised* text (Simplified, lower-case,
half-width; see :mod:`handlers.classify.normalise`).  The rules do four things:

* **never fire** on text without words (a phone number answering an officer, "110"), on an address
  given on its own, or on hyperbole (热死了, 笑死, 吵死了): hyperbole is masked before the model
  reads the text, the others are no emergency whatever the model says;
* **never miss** danger happening now, said in plain words (着火了, 救命, 有人晕倒了, 拿刀砍人),
  unless the message says it is over, elsewhere in time, a joke or a what-if;
* **fraud**: a scam going on now (still transferring, queueing at the bank) is an emergency; a
  question whether a caller's demand is a scam gets the anti-fraud warning (and is no emergency);
  money already paid to a fraudster gets the stop-payment advice;
* **chatter** (thanks, greetings, "收到") is marked: an alert's clue is told from a thank-you.

Add a pattern only with a corpus message that needs it, and run ``lianxin classify forward``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from handlers.classify.english import english_only, english_scam_now, english_verdict

__all__ = ["Verdict", "apply", "mask_hyperbole"]

# Concepts the handlers act on (handlers/intake.py, handlers/alerts_chat.py).
SCAM_CHECK = "consultation:scam_check"
FRAUD_PAID = "report:fraud_paid"
SCAM_NOW = "emergency:scam_in_progress"
SCAM_SCRIPT = "warn:scam_script"
DANGER_NOW = "emergency:danger_now"
CHATTER = "other:chatter"
NO_WORDS = "forced:no_words"
ADDRESS = "forced:address_only"
FRAGMENT = "rule:fragment"
HAZARD = "rule:hazard_not_danger"
SEEN_BEFORE = "rule:seen_before"
COMPLAINT = "rule:complaint"
DESCRIPTION = "rule:description_only"
FIRECRACKERS = "rule:firecrackers_no_fire"
OVER = "rule:over_or_hearsay"
ENGLISH = "forced:english"

# A letter of any script (CJK included): text without one has no words to read.
_WORDS = re.compile(r"[^\W\d_]")

# "热死了", "笑死我了", "吵死人了", "累得要命", "热得快着火了": no death, no fire.
_HYPERBOLE = re.compile(
    r"[热冷累笑吵闹烦气饿困忙美帅馋乐丑臭渴挤晒憋羡慕]死(?:我|人|个人)?(?:了|啦|啊)?"
    r"|[热冷累忙饿困]得(?:要命|要死)"
    r"|热得?(?:快|要)?着火"
)
_MASK = "□"

# An address on its own (the answer to "在哪里?"): place names, numbers and their units only.
_ADDRESS_PART = re.compile(
    r"[\u4e00-\u9fff]{1,8}?(?:省|市|县|区|镇|乡|村|组|屯|街道|街|路|巷|弄|道|小区|花园|苑|公寓"
    r"|大厦|广场|新村|社区)"
    r"|[0-9一二三四五六七八九十百零两]+(?:号楼|号|栋|幢|座|单元|楼|层|室|户|组|排|巷|弄)?"
    r"|(?<![a-z])[a-z](?![a-z])座?|[\s,.\-#、,。:]+"
)

# Danger happening now, in words nobody uses for anything else.
_DANGER = re.compile(
    r"救命(?:啊|呀|!|$)|快来人|快救人|救救(?:我|他|她|孩子)|(?<![a-z])sos(?![a-z])"
    r"|(?<!打)(?<!打不)(?:着|起|失)火了|烧起来了|火(?:很|越来越)?大|冒(?:黑)?烟了"
    r"|(?:拿|持|举|提)着?(?:刀|菜刀|砍刀|斧头|枪|刀子)(?:在|要|追|砍|捅|乱|威胁)"
    r"|(?:在|正在)(?:砍人|捅人|打人|抢劫|绑人)|砍伤了人|捅了人"
    r"|(?:晕倒|昏倒|倒地不起|没有?呼吸|没气了|叫不醒|不省人事|口吐白沫)"
    r"|(?:人|孩子|小孩|老人|他|她)(?:掉|落|跌|摔)(?:进|到|入)?(?:河|江|湖|水库|井|冰窟窿|粪池|水塘|池塘|鱼塘)"
    r"|有人溺水"
    r"|(?:燃气|煤气|天然气|液化气)(?:泄漏|漏气|漏了)|一氧化碳中毒|煤气中毒"
    r"|被困|困在(?:电梯|火|水|楼|屋|车)|(?:孩子|小孩|老人|人)被?(?:关|锁)在"
    r"|要(?:跳楼|跳河|自杀|轻生)|想不开(?:要|了)"
    # Cries newcomers found unanswered (2026-12-07): one's own life, a child gone, a robbery,
    # a fire, violence at home, a kidnapping, somebody lying still after a crash.
    r"|(?:想|要|准备|打算)(?:去)?(?:自杀|轻生|寻死|割腕|喝农药)|(?:我|他|她)(?:想|要)去死"
    r"|不想活了|活不下去了|一死了之"
    r"|(?:孩子|小孩|女儿|儿子|孙子|孙女|老人|爷爷|奶奶|外公|外婆|爸爸|妈妈)(?:走失|走丢)了"
    r"|抢劫(?:啊|呀|了|!|$)|救火(?:啊|呀|!|$)|^快?报警(?:啊|呀)?!+$"
    r"|(?:在|正在)(?:家暴|打老婆|打孩子)|被(?:绑架|劫持)了|被拐走了|人不动了"
    # A newcomer's trial (2026-12-07): wrists cut and bleeding, the model read "我该怎么办" as a
    # question; a child gone, as the pinyin and English cries say it (english.py).
    r"|割腕|(?:流|出)了?(?:好多|很多|一地|满地|不少)的?血|血(?:流)?不止|血止不住"
    r"|(?:孩子|小孩|女儿|儿子|孙子|孙女)不见了"
    # Something set alight (放鞭炮把草垛点着了): the model learned 差点把纸箱点着了 as no
    # emergency in round 40, and 差点 is a calm word here too.
    r"|把.{1,6}(?:点着|烧着)了"
    # Round 41: a crossing whose lights are out, with traffic or children on it and danger
    # named (红绿灯坏了…孩子过马路很危险): the model read a proposal. 建议 / 请问 / 昨天 keep
    # it calm (_CALM), as for every danger word.
    r"|(?:红绿灯|信号灯)[^,.!?。！？]{0,6}(?:坏|不亮|黑|灭|失灵).{0,40}(?:危险|乱开|差点撞)"
)
# A hazard: somebody should look, nobody is in danger now (楼道堆杂物 着火隐患). The model
# alone read an emergency into it; plain danger words still win. (Firecrackers are not here:
# at a petrol station they are an emergency in the corpus.)
_HAZARD = re.compile(r"隐患|会不会着火|容易着火|防火")
# ...unless something is happening already or somebody asks to come (燃气管道漏了 有隐患 快来).
_HAZARD_NOW = re.compile(r"漏|泄|冒烟|起火|着火了|烧起来|爆|晕|困|伤")
# Something the writer saw some time (有人在码头那边见过吗, 我好像看到过有人推走一辆电动车): a
# clue or a question, no danger now; the model alone read an emergency into the second.
_SEEN_BEFORE = re.compile(r"(?:看到|看见|见|遇到|碰到)过")
# What somebody looked like, said on its own (是一个穿黑衣服的男的, 穿红衣服的小孩): the answer to
# an officer's "what did he look like?", or a clue. The model learned clothes from lost-child
# and fleeing-attacker emergencies; without a danger word (_FRAGMENT_DANGER) and in a few words
# it is no emergency. No corpus message of up to 14 characters is both.
_DESCRIPTION = re.compile(
    r"穿.{0,6}(?:衣|裤|外套|褂|衫|裙|鞋|帽|袄)|戴.{0,4}(?:帽|眼镜|口罩)|个子|高个|矮个|光头|短发|长发"
)
_DESCRIPTION_CHARS = 14
# Told as over, elsewhere in time, or hearsay: what the model alone may not make an
# emergency (前天…有人流血, 路口追尾了 没人受伤). Not "since yesterday" or "still": a
# grandmother unanswered since yesterday is one. No corpus emergency matches (checked).
_OVER = re.compile(
    r"(?:前天|昨天|昨晚|上周|上个?月|去年|后来|拉走了|送走了|抬走了|送(?:去|到)?医院了|没人受伤"
    r"|没有人受伤|没有受伤|无人受伤|人没事|听说|据说|有人说|是真的吗|真的假的|已经出来了"
    # A newcomer's trial (2026-12-07): a near miss (差点把纸箱点着了), somebody gone or sent off
    # (现在已经走了, 已经被我骂走了), all right now, and redress asked for something done
    # (孩子被同学打了…我要讨个说法: a report or a dispute). "Still" and present-time words
    # keep the model's emergency (差点被电到 人还在那电).
    r"|差点|已经(?:被.{0,3})?(?:骂|赶|劝|撵)?走了|没事了|讨个?说法|要个说法|讨公道)"
)
_STILL = re.compile(r"到现在|一直|还没|至今|从昨|从前天")
# A complaint about the service (a newcomer's trial, 2026-12-07): the reason after a 不满意
# rating, or nobody having come (到现在都没人来看过). The rating handler runs after the
# emergency layer, so a model's emergency here paged the leader with a P1 instead of
# reopening the rated matter. Unlike _OVER, "until now" (_STILL) does not keep it.
_COMPLAINT = re.compile(r"^\s*不满意|没有?人来(?:看|管|修|处理|问)过?")
# A report of a crime (我要举报有人开赌场), a leak of water, a missing manhole cover: an officer
# should come, nobody is in danger now, unless the rules' plain danger words say otherwise or
# water meets electricity, fire or a dam.
_NOT_DANGER = re.compile(r"举报|井盖")
_WATER = re.compile(r"漏水|渗水")
_WATER_DANGER = re.compile(r"电|火|坝|堤|越来越|淹|塌|煤气|燃气")
# Firecrackers are a nuisance (有人在我家门口放鞭炮) unless something catches or somebody is hurt,
# or they go off where fuel is (every corpus emergency with them: 加油站, 烧起来).
_FIRECRACKERS = re.compile(r"鞭炮|烟花|炮仗|爆竹|放炮")
_FIRECRACKERS_DANGER = re.compile(
    r"加油站|加气站|油库|气站|仓库|草垛|柴|烧|着火|着了|起火|火已|伤|炸到|炸了人|扔进|往.{0,6}扔"
)
# A danger told as over, elsewhere in time, hearsay, fiction, a joke or a what-if.
_CALM = re.compile(
    r"昨天|昨晚|前天|上周|上个?月|去年|以前|之前|那次|当时|差点|幸好|还好|好在|虚惊一场"
    r"|如果|要是|万一|假如|怎么办才好|演习|演练|讲座|宣传|新闻|电视|电影|(?:电视)?剧|小说|视频里"
    r"|游戏|哈哈|笑死|开玩笑|😂|🤣|😅|没事了|已经(?:灭|扑灭|救出|找到|送医|送到医院|没事)"
    r"|原来是|怎么预防|如何|注意事项|提醒大家|转发|一旦|真(?:要|的)?(?:着火|出事)"
    # A question about what one should do, a lesson, a proposal: nobody in danger now.
    r"|应该怎么|怎么处理|怎么救|想学|学一下|学习|培训|请问|建议|报警器"
    # How long before one may report (老人走失了多久才能报警): a question, not the loss now.
    r"|多久|要等|才能报警|才好报警"
    # Over, nobody hurt, or hearsay (a newcomer's trial, 2026-12-07): 后来120拉走了, 没人受伤,
    # 有人说今天村里有人溺水了 是真的吗.
    r"|后来|拉走了|送走了|抬走了|没人受伤|没有人受伤|没有受伤|无人受伤|人没事|已经出来了"
    r"|听说|据说|有人说|是真的吗|真的假的"
)
# A dream told in the group (round 41: 夢到我孩子掉河裡了 嚇醒了; 梦见有人拿刀追我 醒来心还在跳):
# the danger words fired a P1 page. Not the idiom 做梦都没想到, and "still" (还在) does not
# undo it; a call for help does (_DREAM_URGENT).
_DREAM = re.compile(r"梦见|梦到|做(?:了个?|个)?(?:噩|恶)?梦(?![都也])|噩梦|恶梦|是(?:个|场)?梦")
_DREAM_URGENT = re.compile(r"救命|快来|快点来|赶紧来|马上来|快报警|快打110|正在")
# Overrides _CALM: a present-time or urgent word ("昨天他说要弄死我,现在又拿着刀来了").
# "现在已经出来了", "现在没事了" say it is over: 现在 alone is not urgent there.
# "到现在" is "until now" (still), not "now": the complaint 到现在都没人来看过 is no urgency.
_URGENT = re.compile(
    r"(?<!到)现在(?!已经|没事|好了|出来|不)|正在|还在|快来|快点来|赶紧来|马上来|快报警|快打110"
)

# Fraud.  What a caller, text or app asks for; "is it real?"; money that has left; money leaving.
_SCAM_ASK = re.compile(
    r"转账|转钱|汇款|打钱|安全账户|验证码|下载|app|链接|扫码|二维码|共享屏幕|屏幕共享|保证金|手续费"
    r"|刷单|冻结|解冻|理赔|退款|中奖|领奖|贷款|投资|返利|加qq|交钱|交[0-9一二三四五六七八九十几两百千万]"
    r"|公安局|公检法|冒充|客服|领导"
)
_IS_IT_REAL = re.compile(
    r"是真的吗|是不是真的|真的假的|是真的假的|是真的不|真的吗|靠谱吗|靠谱不|可信吗|能信吗|可靠吗"
    r"|真定假|能不能信|会不会是骗|要不要(?:转|交|给)|是不是(?:骗子|诈骗|骗局|骗人|被骗)"
    r"|(?:现在|可以|能|该|应该)(?:转|交|给)吗|(?:转|交)不(?:转|交)|该不该(?:转|交|给)"
    r"|(?:骗子|诈骗|骗局|骗人|骗人的)(?:吧|吗|啊|呀|呢|嘛|哦|\?)"
    # Minnan asks with 敢 (伊讲伊是公安局的 叫阮汇钱去安全账户 敢是真的): the model reads chatter.
    r"|敢是真的|敢(?:是|会是)(?:骗|诈)"
)
_MONEY_GONE = re.compile(
    r"(?:已经|刚|都)(?:转|汇|打|交|充|付)了|(?:转|汇|打|交|充|付)了[0-9一二三四五六七八九十几两百千万]"
    r"|被骗了|骗了[0-9一二三四五六七八九十几两百千万]|骗走|转给(?:了)?骗子|(?:亏|损失)了"
    r"|忽悠(?:着)?买了|骗(?:去|着)?(?:买|做|投)"
)
_FRAUD = re.compile(
    r"骗|诈|刷单|忽悠|冒充|安全账户|传销|杀猪盘|提不出来|提现不了"
    # A caller who says he is an official (我妈要给一个自称公安的人转20万).
    r"|自称(?:是)?(?:公安|警察|法院|检察|领导|银行)"
)
# A fraudster's script told, not asked about (有个人加我微信说是我领导 让我先帮他转两万; 短信说
# 我医保卡被冻结 让我点链接解冻; 说我中奖了 要先交税): the warning goes out all the same.
_SCAM_SCRIPT = re.compile(
    r"(?:说|自称|冒充)(?:他)?(?:是)?(?:我)?(?:的)?(?:领导|老板|老师|公安|警察|法院|检察院|客服|快递)"
    r".{0,20}(?:转|汇|打钱|交|借|验证码|链接|下载)"
    r"|冻结.{0,12}(?:链接|解冻|验证码|转)|(?:点|打开)链接.{0,8}(?:解冻|退款|理赔|领)"
    r"|中奖.{0,12}(?:交|先付|手续费|税|保证金)|先交.{0,6}(?:税|手续费|保证金|押金)"
    # The script itself forwarded whole (a newcomer's trial, 2026-12-08: a "医保局" text with a
    # "安全账户" and a link, pasted into the group without a word): the model reads chatter.
    r"|(?:转|汇|存|打)(?:钱|款)?(?:入|到|进|去)?安全账户|冻结.{0,60}(?:点击|点开|打开)?链接"
)
# Not a loss of the writer's own: a near miss, nothing sent, a warning for others.
_NOT_PAID = re.compile(
    r"差点|幸好|还好|好在|还没(?:转|汇|给|交|打)|没(?:敢)?(?:转|汇|交|给)|没上当|识破"
    r"|转发|大家注意|提醒大家|要注意|新闻|电视|宣传|有人被|好多|不少人|很多人|建议|希望"
)
_MONEY_MOVING = re.compile(
    r"(?:正在|还在|继续|准备)(?:去)?(?:转|汇|打钱|充|交钱|借钱|取钱)"
    r"|(?:在|去)(?:银行|atm|农商行|信用社)(?:的路上|排队|门口)|(?:现在|正)在(?:银行|atm|农商行|信用社)"
    r"|刮序号|还在(?:扣|少)|一笔一笔|余额还在|视频里(?:让我)?继续"
    # A newcomer's trial (2026-12-07): 正在手机上转账, 我马上就要付了, 屏幕共享…我现在正在操作,
    # and somebody who must be stopped (我拦不住, 怎么拦住她). Not 要马上交 (the caller's demand,
    # asked about before paying: SCAM_CHECK).
    r"|(?:正在|还在)(?:手机上|网上|微信上|支付宝上)(?:转|汇|付|充)|马上就要(?:去)?(?:付|转|汇|充|交)"
    r"|(?:正在|还在)(?:操作|输(?!液)|填)"
    r"|拦不住|(?:怎么|快|帮我|帮忙|赶紧)(?:去)?拦"
)

# A fragment: a few characters, typically the answer to an officer's question ("23路", "两个人",
# "在的"), is no emergency unless it has one of these (快来, 救命, 着火了, 打起来了, 人不见了);
# up to four characters it is chatter (no corpus message that short is anything else).
_FRAGMENT_CHARS = 6
_CHATTER_CHARS = 4
_FRAGMENT_DANGER = re.compile(
    r"快|救|火|伙|烟|打|杀|偷|抢|砍|刀|枪|不见|找不|丢|跳|死|活|困|淹|掉|落水|晕|血|伤|撞|出事|报警"
    r"|110|119|120|炸|爆|漏|毒|绑|拐|sos"
)
_CJK = re.compile(r"[\u4e00-\u9fff]")

# Thanks, greetings, acknowledgements: short replies nobody needs to act on.
_CHATTER = re.compile(
    r"谢谢|感谢|多谢|辛苦了?|收到|好的|明白|知道了|早上好|早安|晚安|你好|大家好|哈哈|点赞|👍|🙏"
)


def mask_hyperbole(norm: str) -> str:
    """``norm`` with hyperbole (热死了, 笑死, 热得要命) replaced by a mark the model ignores."""
    return _HYPERBOLE.sub(_MASK, norm)


@dataclass(frozen=True)
class Verdict:
    """What the rules decided; ``None`` leaves the decision to the model."""

    emergency: bool | None = None
    label: str | None = None
    concepts: tuple[str, ...] = ()
    # False only for the verdict of no rules at all (measuring the model alone).
    checked: bool = True

    @property
    def final(self) -> bool:
        """Nothing for the model to read (no words, a bare address)."""
        return bool(self.concepts) and self.concepts[0] in (NO_WORDS, ADDRESS, ENGLISH)

    @property
    def fragment(self) -> bool:
        """A few words without a danger word: chatter unless the model is sure of a label."""
        return FRAGMENT in self.concepts


def _clauses(norm: str) -> list[str]:
    return [c for c in re.split(r"[,.!?;，。！？；\n ]+", norm) if c]


def _danger_now(norm: str) -> bool:
    """Danger in plain words, in a message that does not call it over, past or pretend."""
    if not _DANGER.search(norm):
        return False
    if _DREAM.search(norm) and not _DREAM_URGENT.search(norm):
        return False
    urgent = _URGENT.search(norm) is not None
    return urgent or not _CALM.search(norm)


def _description_only(norm: str, size: int) -> bool:
    return (
        size <= _DESCRIPTION_CHARS
        and _DESCRIPTION.search(norm) is not None
        and not _FRAGMENT_DANGER.search(norm)
        and not _URGENT.search(norm)
    )


def apply(norm: str) -> Verdict:
    """The rules' verdict on normalised text (the model is asked for the rest)."""
    if not _WORDS.search(norm):
        return Verdict(emergency=False, label="other", concepts=(NO_WORDS,))
    if len(norm) <= 40 and _ADDRESS_PART.sub("", norm) == "":
        return Verdict(emergency=False, label="other", concepts=(ADDRESS,))
    if english_only(norm):
        danger, kind = english_verdict(norm)
        # Money leaving now gets the stop-the-transfer reply in English too.
        scam = (SCAM_NOW,) if english_scam_now(norm) else ()
        return Verdict(emergency=danger, label=kind, concepts=(ENGLISH, *scam))
    fraud = _FRAUD.search(norm) is not None
    scam_ask = _SCAM_ASK.search(norm) is not None
    moving = (fraud or scam_ask) and _MONEY_MOVING.search(norm) is not None
    if moving and not _NOT_PAID.search(norm):
        return Verdict(emergency=True, label="report", concepts=(SCAM_NOW,))
    if scam_ask and _IS_IT_REAL.search(norm) and not moving and not _MONEY_GONE.search(norm):
        # Asking before paying: the warning goes out; an officer answers later.
        return Verdict(emergency=False, label="consultation", concepts=(SCAM_CHECK,))
    if fraud and _MONEY_GONE.search(norm) and not _NOT_PAID.search(norm):
        return Verdict(label="report", concepts=(FRAUD_PAID,))
    if _danger_now(mask_hyperbole(norm)):
        return Verdict(emergency=True, concepts=(DANGER_NOW,))
    size = len(_CJK.findall(norm))
    # A veto says no emergency but leaves the rest to read: chatter and fragments are marked
    # as ever (an alert's clue is told from a thank-you by CHATTER).
    concepts = [c for c in (_veto(norm, size),) if c]
    if _SCAM_SCRIPT.search(norm) and not moving and not _MONEY_GONE.search(norm):
        # The model keeps its say on the label; the warning is added.
        concepts.append(SCAM_SCRIPT)
    if _CHATTER.search(norm) and len(norm) <= 12:
        concepts.append(CHATTER)
    if size <= _FRAGMENT_CHARS and not _FRAGMENT_DANGER.search(norm):
        label = "other" if size <= _CHATTER_CHARS else None
        return Verdict(emergency=False, label=label, concepts=(*concepts, FRAGMENT))
    vetoed = bool(concepts) and concepts[0] in _VETOES
    return Verdict(emergency=False if vetoed else None, concepts=tuple(concepts))


_VETOES = (HAZARD, SEEN_BEFORE, FIRECRACKERS, OVER, DESCRIPTION, COMPLAINT)


def _veto(norm: str, size: int) -> str | None:
    """Why a message the danger words did not flag is no emergency whatever the model reads,
    or None: a hazard, something seen some time, a description, firecrackers, a complaint about
    the service, something over, nobody hurt, hearsay, a crime reported, a water leak, a dream."""
    urgent = _URGENT.search(norm) is not None
    if _DREAM.search(norm) and not _DREAM_URGENT.search(norm):
        return OVER
    if _HAZARD.search(norm) and not (urgent or _HAZARD_NOW.search(norm)):
        return HAZARD
    if _SEEN_BEFORE.search(norm) and not urgent:
        return SEEN_BEFORE
    if _FIRECRACKERS.search(norm) and not _FIRECRACKERS_DANGER.search(norm):
        return FIRECRACKERS
    if _COMPLAINT.search(norm) and not urgent:
        return COMPLAINT
    if not urgent and (
        (_OVER.search(norm) and not _STILL.search(norm))
        or _NOT_DANGER.search(norm)
        or (_WATER.search(norm) and not _WATER_DANGER.search(norm))
    ):
        return OVER
    if _description_only(norm, size):
        return DESCRIPTION
    return None
