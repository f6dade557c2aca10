"""Tests for handlers.classifier.

Run from the repository root:  PYTHONPATH=. pytest tests/test_classifier.py
"""

from __future__ import annotations

import json
from functools import cache, lru_cache
from pathlib import Path

import opencc
import pytest

from handlers.classifier import (
    LABELS,
    Classification,
    Classifier,
    EvalReport,
    evaluate,
    normalise,
)

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
# A copy of the shared dev set lives in the repo, so CI in a fresh clone runs it too.
DEV_SET = DATA / "messages-dev.jsonl"
HELDOUT_SET = DATA / "heldout.jsonl"
# Fresh batches written to measure generalisation (round 2 before tuning, round 3 measured
# untouched after the redesign, round 4 before the safety net, round 5 untouched after it;
# each then used to fix misses by concept).  Goals hold on all.
UNSEEN_SETS = sorted(DATA.glob("unseen-*.jsonl"))

ACCURACY_GOAL = 0.90
EMERGENCY_PRECISION_GOAL = 0.80


def _load(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


@pytest.fixture(scope="module")
def clf() -> Classifier:
    return Classifier.from_file()


def _assert_goals(report: EvalReport) -> None:
    details = report.format()
    assert report.accuracy >= ACCURACY_GOAL, details
    assert report.emergency_recall == 1.0, details
    assert report.emergency_precision >= EMERGENCY_PRECISION_GOAL, details


# ---------------------------------------------------------------------------- metrics


def test_dev_set_meets_goals(clf: Classifier) -> None:
    rows = _load(DEV_SET)
    assert len(rows) >= 40
    _assert_goals(evaluate(clf, rows))


def test_heldout_set_meets_goals(clf: Classifier) -> None:
    rows = _load(HELDOUT_SET)
    assert len(rows) >= 120
    _assert_goals(evaluate(clf, rows))


def test_heldout_set_is_balanced_and_independent() -> None:
    rows = _load(HELDOUT_SET)
    labels = {r["label"] for r in rows}
    assert labels == set(LABELS)
    assert sum(r["emergency"] for r in rows) >= 15
    texts = [r["text"] for r in rows]
    assert len(texts) == len(set(texts)), "duplicate held-out rows"
    # Both scripts must be represented: some rows change under t2s conversion.
    t2s = opencc.OpenCC("t2s")
    traditional = [t for t in texts if t2s.convert(t) != t]
    assert len(traditional) >= 30
    dev_texts = {r["text"] for r in _load(DEV_SET)}
    assert not dev_texts & set(texts), "held-out rows copied from the dev set"


def test_unseen_sets_exist() -> None:
    # Guards against the glob silently matching nothing (renamed files, wrong directory).
    assert len(UNSEEN_SETS) >= 2


@pytest.mark.parametrize("path", UNSEEN_SETS, ids=lambda p: p.name)
def test_unseen_set_meets_goals(clf: Classifier, path: Path) -> None:
    rows = _load(path)
    assert len(rows) >= 100
    # Enough emergencies that recall 1.0 means something.  Rounds 16 and 17 (town and village
    # life, more everyday chatter) hold 21 and 22, round 22 (an ordinary week in a county
    # seat) 18; the earlier batches 32 or more.
    assert sum(r["emergency"] for r in rows) >= 18
    texts = [r["text"] for r in rows]
    assert len(texts) == len(set(texts)), f"duplicate rows in {path.name}"
    # A bare acknowledgement ("好的", "收到") is written independently by anyone; only a
    # longer shared row is a copy.
    copied = {t for t in {r["text"] for r in _load(DEV_SET)} & set(texts) if len(t) > 4}
    assert not copied, f"rows copied from dev: {sorted(copied)}"
    _assert_goals(evaluate(clf, rows))


# -------------------------------------------------------------------------- normalise


def test_normalise_script_width_case_whitespace() -> None:
    assert normalise("請問派出所週末上班嗎") == "请问派出所周末上班吗"
    assert normalise("ＥＴＣ　認證，１１０！") == "etc 认证,110!"
    assert normalise("  加我  VX \n 看看 ") == "加我 vx 看看"


# ------------------------------------------------------------------ script invariance

SAME_SENTENCES = [
    "我的電動車昨晚被偷了",
    "鄰居蓋房子佔了我家的地,說了也不聽",
    "請問補辦身份證需要帶什麼材料",
    "建議在學校門口裝個紅綠燈",
    "我家孩子走丟了,穿著藍色衣服",
    "廚房著火了,煙很大",
    "謝謝民警,辛苦了",
    "有人打電話說我涉嫌洗錢,要我轉到安全賬戶,這是不是騙子",
    "樓下兩個人在互捅 地上全是血",
    "屋裡有煤氣味 老人叫不醒",
    "我兒子說活著沒意思 現在聯繫不上",
    "熱死了 今天",
    "電視上說鄰縣有人持刀傷人",
]


@pytest.mark.parametrize("traditional", SAME_SENTENCES)
def test_traditional_and_simplified_agree(clf: Classifier, traditional: str) -> None:
    simplified = opencc.OpenCC("t2s").convert(traditional)
    assert simplified != traditional  # the case really exercises conversion
    a, b = clf.classify(traditional), clf.classify(simplified)
    assert (a.label, a.emergency, a.scores) == (b.label, b.emergency, b.scores)


# ------------------------------------------------------------------------- safety net


@lru_cache(maxsize=1)
def _net_only() -> Classifier:
    """The classifier with every precise emergency entry removed: only the net is left."""
    import yaml

    data = yaml.safe_load((REPO / "handlers" / "lexicon.yaml").read_text(encoding="utf-8"))
    data["emergency"]["entries"] = []
    return Classifier.from_dict(data)


# Wording that earlier rounds missed: the net must catch it from morphemes and their
# co-occurrence alone, without the precise entries (none of these is a net phrase).
NET_ONLY_EMERGENCIES = [
    "有人拿个铁锤在街上乱砸",
    "煤气管子在嘶嘶响 一股臭鸡蛋味",
    "有人把一个女的往车里拖",
    "楼下两个人在互捅 地上全是血",
    "塔吊倒了 下面有人",
    "我刚到家 发现门被撬了 屋里还有动静",
    "有人在拽我家门把手 我好怕",
    "水库边有个娃半天没上来",
    "我老公说要带着孩子一起去死",
]


@pytest.mark.parametrize("text", NET_ONLY_EMERGENCIES)
def test_safety_net_alone_catches_unseen_wording(text: str) -> None:
    result = _net_only().classify(text)
    assert result.emergency, result
    assert any(m.startswith("net:") for m in result.matched), result
    assert result.label in ("report", "help"), result


@pytest.mark.parametrize(
    "text",
    [
        # Single weak morphemes need corroboration.
        "我现在在河边钓鱼",
        "门锁坏了 现在进不去",
        "我电脑卡住了",
        "买了把新菜刀",
        # Shared blockers reach the net: past, hypothetical, publicity, resolved, advice.
        "上个月我家被人撬门偷了两千块现金 到现在也没个说法",
        "万一煤气管子漏气了怎么办",
        "新闻上看到外省有人在幼儿园门口砍人",
        "村口那棵老树倒了 把路堵了 没砸到人",
        "家里煤气泄漏第一步是关阀门还是开窗?",
        # Harmless compounds of danger morphemes.
        "晚上吃毛血旺 再来个烧烤",
        "我家猫从楼上掉下来了 腿瘸了",
    ],
)
def test_safety_net_needs_corroboration_and_respects_blockers(text: str) -> None:
    result = _net_only().classify(text)
    assert not result.emergency, result


def test_safety_net_prefers_report_for_crimes(clf: Classifier) -> None:
    # A robbery that left someone bleeding is a report, even though injury scores high.
    result = _net_only().classify("有人骑摩托抢了个老太太的金项链 老太太被拽倒了 磕得满脸是血")
    assert result.emergency and result.label == "report", result


# --------------------------------------------------------------------------- negation


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("不是报警,只是问问户口迁移要带什么", "consultation"),
        ("不是要报警哈,就想问下派出所几点上班", "consultation"),
        ("我没有被骗,就是想问问这个投资平台是不是骗子", "consultation"),
        ("钱包没丢,虚惊一场", "other"),
    ],
)
def test_negated_keywords_do_not_count(clf: Classifier, text: str, label: str) -> None:
    result = clf.classify(text)
    assert result.label == label, result
    assert "report:report_explicit" not in result.matched


def test_negation_cancels_the_keyword_it_precedes(clf: Classifier) -> None:
    plain = clf.classify("我的手机被偷了")
    negated = clf.classify("我的手机没被偷")
    assert plain.label == "report"
    assert "report:theft" in plain.matched
    assert "report:theft" not in negated.matched


def test_question_particle_is_not_a_negation(clf: Classifier) -> None:
    # 是不是 contains 不是, 有没有 contains 没有: neither may cancel what follows.
    result = clf.classify("他让我转了两万块,我是不是被骗了")
    assert result.label == "report", result
    assert "report:fraud_suffered" in result.matched


# -------------------------------------------------------------------------- emergency

CLEAR_EMERGENCIES = [
    ("有人拿着菜刀在村口追着砍人", "report"),
    ("快来人,饭店门口两伙人打架,有人头上全是血", "report"),
    ("我家后屋着火了,火越烧越大", "help"),
    ("廚房起火了,快來人", "help"),
    ("有个小孩掉进池塘里了", "help"),
    ("我儿子五岁,在集市上走丢了", "help"),
    ("我女兒放學到現在還沒回家,電話也打不通", "help"),
    ("有人把我孙子抱上一辆面包车开走了", "report"),
    ("他喝醉了说要杀了我,手里拿着刀", "report"),
    ("有个女的站在楼顶上说不想活了", "help"),
    ("闻到很大的煤气味,老人在屋里叫不醒", "help"),
    ("路口车祸,有人倒在地上流了很多血", "help"),
    ("有人在撬我家门,我躲在卧室里", "report"),
    ("老人突然晕倒了,没反应", "help"),
]


@pytest.mark.parametrize(("text", "label"), CLEAR_EMERGENCIES)
def test_clear_emergencies_are_never_missed(clf: Classifier, text: str, label: str) -> None:
    result = clf.classify(text)
    assert result.emergency, result
    assert result.label == label, result


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("上个月被偷了一辆摩托车", "report"),
        ("去年有人在河里溺水了,那里要装护栏", "suggestion"),
        ("如果遇到火灾怎么办", "consultation"),
        ("万一孩子掉进水里应该怎么施救", "consultation"),
        ("下周村委举办防火知识讲座,请大家参加", "other"),
        ("明天学校搞消防演练,会放烟,大家别慌", "other"),
        ("学校今天搞消防演练,教学楼冒烟了是正常的,大家别慌", "other"),
        ("不是着火,是邻居在烧秸秆", "report"),
        ("路口追尾了,没人受伤,对方开跑了", "report"),
        ("孩子走丢了一会儿,已经找到了,谢谢大家", "other"),
        ("我的车钥匙掉进下水道了", "help"),
    ],
)
def test_no_emergency_for_past_hypothetical_publicity(
    clf: Classifier, text: str, label: str
) -> None:
    result = clf.classify(text)
    assert not result.emergency, result
    assert result.label == label, result


@pytest.mark.parametrize(
    "text",
    ["村里放了宣传片,讲的是有人落水了该怎么救", "电视上说邻县有个小孩被拐走了"],
)
def test_publicity_and_media_are_not_emergencies(clf: Classifier, text: str) -> None:
    result = clf.classify(text)
    assert not result.emergency, result


def test_emergency_forces_an_actionable_label(clf: Classifier) -> None:
    # Phrased as a question, but the fire is burning now: must not become consultation.
    result = clf.classify("请问屋里着火了冒黑烟怎么办")
    assert result.emergency
    assert result.label in ("help", "report")
    assert "emergency:fire" in result.matched


# Phrasings that are not keywords of any single entry: they fire through concepts
# (person x harm state, water body x person, weapon words, urgency).
VARIED_EMERGENCIES = [
    "车翻沟里了人卡着出不来",
    "水库边有个娃半天没上来",
    "我老公说要带着孩子一起去死",
    "两伙人干起来了 见血了",
    "有人拿个铁锤在街上乱砸",
    "煤气管子在嘶嘶响 一股臭鸡蛋味",
    "孩子误喝了消毒液",
    "塔吊倒了 下面有人",
    "有人在拽我家门把手 我好怕",
    "我被他们关在仓库里 不让我走",
    "活着没意思 不想拖累家里了 遗书写好了",
    "電線掉下來了 有個人碰到倒地上了",
]


@pytest.mark.parametrize("text", VARIED_EMERGENCIES)
def test_varied_emergency_wording(clf: Classifier, text: str) -> None:
    result = clf.classify(text)
    assert result.emergency, result
    assert result.label in ("report", "help"), result


# Dangers that once only the n-gram model caught (round 8); the rules must carry them alone.
RULES_ONLY_EMERGENCIES = [
    ("我儿子在水库边钓鱼滑下去了,电话一下就断了", "help"),  # slipped into water, call cut
    ("村后面那个大坝在漏水,越漏越大,下面住着好几户人家", "help"),  # dam leaking
    ("河堤决口了,水往村里灌", "help"),
    ("自称银行的人打电话说我卡有问题,我妈现在正一边接电话一边用手机转账", "report"),
    ("我外公在信用社要把存款汇给一个打电话自称公安的人", "report"),  # wiring at the counter
    ("我们一家吃了山上采的野蘑菇,现在都在吐,头晕", "help"),  # mushroom poisoning
    ("一块招牌掉下来砸中了骑车的大爷", "help"),  # things falling on people
    ("娃烧到40度,浑身抽筋,叫不应", "help"),  # fever fit
    ("小孩高烧惊厥了", "help"),
    # Round 9 concepts.
    ("快来", "help"),  # a bare alarm
    ("有贼在偷东西", "report"),
    ("我妹躁狂症又犯了,半夜光着脚往水库那边跑", "help"),  # mental-illness episode
    ("孩子把一颗硬币吞下去了", "help"),
    ("我爸说话含糊不清,嘴也歪了", "help"),
    ("邻居家小孩爬到窗台外面去了,大人不在", "help"),
    ("一个醉汉闯进来了,赶不走", "report"),
    ("他说要把我家房子点了,人已经在路上", "report"),
    ("我被困在电梯里了 喊不到人", "help"),
    # Round 10 concepts.
    ("后山的石头一直往下滚,坡都裂开了", "help"),  # slope failing
    ("孩子被马蜂蜇了,脸肿了,喘气很急", "help"),  # sting with breathing trouble
    ("他说活着没意思,拿着剪刀把自己锁在屋里", "help"),  # a blade turned on oneself
    ("两个人抢了我奶奶的金耳环,她被拖倒在地上", "report"),
    ("有个男的在小学围墙外面往里扔石头,还想翻墙", "report"),
    # Round 11 concepts (Cantonese function words, theft / drunk driving in progress, a
    # child named after the lock, held far from home, a child in the traffic).
    ("阿公喺屋企晕咗 叫极都冇反应", "help"),
    ("我阿嫲出去买餸到而家都冇返 佢有老人痴呆", "help"),
    ("车钥匙锁车里了 里面还有个小孩 热得满头汗", "help"),
    ("有两个人正在偷剪变压器的电线", "report"),
    ("醉驾的 一辆红色小车在街上乱开 快拦住", "report"),
    ("我妹被骗到外地了 那边的人不让她回来", "report"),
    ("一个小孩在马路中间玩 车开得好快", "help"),
    # Round 12: a person pushed / thrown / held into water or off a height.
    ("有個人在橋上要把他老婆推下河", "report"),
    ("有人在河边把一个女的往水里按", "report"),
    ("他把孩子从二楼扔下来了", "report"),
]


@pytest.mark.parametrize(("text", "label"), RULES_ONLY_EMERGENCIES)
def test_rules_alone_catch_former_model_only_emergencies(text: str, label: str) -> None:
    result = _rules().classify(text)
    assert result.emergency, result
    assert result.label == label, result


@lru_cache(maxsize=1)
def _rules() -> Classifier:
    return Classifier.from_file(model_path=False)


@pytest.mark.parametrize(
    "text",
    [
        "赵警官,我儿子那个打架的案子现在到哪一步了",  # a case follow-up
        "那个收古董的拿两百块把我奶奶的银镯子骗走了",  # grandma's bracelet, not grandma
        "下大雪封路了,我们困在服务区,吃的喝的都有",  # stranded but safe
        "两家孩子打架,已经被劝开了",
        "小区门口的井盖丢了,晚上容易掉进去",  # a hazard, not a fall
        "他对我翻白眼,还骂我",
        "请问持枪证怎么办",  # a permit, not a gun in hand
        "老人拄拐走不了远路,谁能帮忙推一下轮椅",  # 拄拐 is not 拐走
        "有人把垃圾扔进河里",  # dumping, not a person in the water
    ],
)
def test_round9_non_emergencies(clf: Classifier, text: str) -> None:
    assert not clf.classify(text).emergency, clf.classify(text)


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("隔壁村的砍了我们的竹子 说是他们的山", "dispute"),  # 砍了我们的 is not 砍了我
        ("邻居家的树挡住我家窗户 叫他砍他不肯砍", "dispute"),
        ("我被人打了 在医院缝了三针 打人的跑了 想报案", "report"),  # already stitched
        ("办证要去哪里 要不要交钱", "consultation"),  # a fee question, not a scam payment
        ("捡到一个钱包 里面好多卡 一直有电话打进来", "help"),  # found property (model veto)
        ("打幺幺零半天没人接 要改进啊", "suggestion"),  # service feedback (model veto)
        ("有人在网吧后面卖那种小药丸", "report"),  # illegal trade (model veto)
        ("家里就我和孩子 万一半夜着火了该怎么跑", "consultation"),  # what-if (model veto)
    ],
)
def test_round11_calm_messages(clf: Classifier, text: str, label: str) -> None:
    result = clf.classify(text)
    assert not result.emergency, result
    assert result.label == label, result


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("jc叔叔 初中生可以去网吧打工吗", "consultation"),  # is it allowed: a law question
        ("我部手機跌咗喺巴士度 點樣搵返", "help"),  # Cantonese: dropped, how to get back
        ("窗口那个办事员一直在聊天 让我们干等", "suggestion"),
        ("派出所态度好差 问个事爱理不理", "suggestion"),
        ("村口站牌的字太小了 换个大点的", "suggestion"),
        ("村口那个坑摔了好几个人了 麻烦反映一下", "suggestion"),
        ("希望户籍室中午也能开 我们上班的来不及", "suggestion"),
        ("隔篱成日将垃圾放喺我门口", "dispute"),
        ("有个厂往河里排废水 好几天了", "report"),
    ],
)
def test_round11_label_boundaries(clf: Classifier, text: str, label: str) -> None:
    assert clf.classify(text).label == label, clf.classify(text)


def test_normalise_cantonese_and_abbreviations() -> None:
    assert normalise("阿婆喺街市暈咗 冇人識佢") == "阿婆在街市晕了 没人识他"
    assert normalise("到而家都冇返屋企") == "到现在都没回家"
    assert normalise("點樣搵返") == "怎样找回"
    # Words only a Cantonese writer uses are always mapped ...
    assert normalise("佢揸住把刀喺度嗌") == "他拿着把刀在这喊"
    assert normalise("叫極都唔醒") == "怎么叫都不醒"
    assert normalise("琴晚佢哋俾人呃咗錢") == "昨晚他们给人骗了钱"
    # ... words that are Mandarin too only in a Cantonese message, sparing the compounds.
    assert normalise("佢話係我老公朋友 仲扯緊") == "他说是我老公朋友 还扯着"
    assert normalise("電話冇人接 佢哋關係好緊張") == "电话没人接 他们关系好紧张"
    assert normalise("他说话的时候很紧张") == "他说话的时候很紧张"
    assert normalise("打电话给仲裁委 系统没反应") == "打电话给仲裁委 系统没反应"
    # Taiwan and Hong Kong nouns; "call 999".
    assert normalise("機車騎士在捷運站") == "摩托车骑手在地铁站"
    assert normalise("鷹架倒了 身分證") == "脚手架倒了 身份证"
    assert normalise("有冇人call咗999") == "有没人打了110"
    assert normalise("唔該晒") == "谢谢"
    assert normalise("JC叔叔 打一一零 zf") == "警察叔叔 打110 政府"
    assert normalise("幺二零") == "120"
    assert normalise("jcb挖掘机") == "jcb挖掘机"  # only a stand-alone abbreviation


def test_normalise_round24_25_dialect_forms() -> None:
    # Cantonese: V紧 + 交, 搵唔返, 蚊, 唔俾 + person + verb, romanised D / 黎, 水浸.
    assert normalise("佢哋打緊交") == "他们在打架"
    assert normalise("而家搵唔返個人 四千幾蚊") == "现在找不回个人 四千几块"
    assert normalise("唔俾我哋行") == "不让我们行"
    assert normalise("佢唔俾錢") == "他不给钱"
    assert normalise("有人偷緊嘢 快D黎") == "有人偷着东西 快点来"
    assert normalise("水浸到樓梯") == "水淹到楼梯"
    # 话 as a language is not "say"; 辛苦晒 is thanks, 好辛苦 is feeling unwell.
    assert normalise("佢用廣東話講") == "他用广东话讲"
    assert normalise("辛苦晒 佢話好辛苦") == "辛苦晒 他说好难受"
    # South-western Mandarin and voice input: 一哈, 遭偷, 莫得, 以经, 听讲 (but 认真听讲).
    assert normalise("看一哈 遭偷了 莫得事 以经烧到了") == "看一下 被偷了 没有事 已经烧到了"
    assert normalise("听讲上个月") == "听说上个月"
    assert normalise("上课要认真听讲") == "上课要认真听讲"


def test_normalise_round26_27_taiwan_minnan_forms() -> None:
    # Taiwan nouns: 瓦斯 (gas), 員警, 檢舉, 志工, 視訊 (video call), LINE (the chat app).
    assert normalise("廚房有瓦斯味 員警 志工 視訊") == "厨房有燃气味 民警 志愿者 视频"
    assert normalise("用LINE檢舉") == "用微信举报"
    assert normalise("online 课程") == "online 课程"
    # Minnan: 囝仔 (child), 少年仔, 袂 / 毋通 (not), 厝 (house), 代誌, 拍謝, 按怎.
    assert normalise("阮囝仔講了好幾次都袂聽") == "阮孩子讲了好几次都不听"
    assert normalise("少年仔在騎樓飆車") == "年轻人在骑楼飙车"
    assert normalise("毋通去 隔壁厝 代誌按怎辦 拍謝") == "不要去 隔壁屋 事情怎么办 不好意思"
    # ... but not the Mandarin words that share the characters.
    assert normalise("毋庸置疑 联袂出演") == "毋庸置疑 联袂出演"


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("今天热死了", "other"),
        ("笑死我了哈哈哈", "other"),
        ("饿死了 有没有人一起吃饭", "other"),
        ("累得要死 今天搬了一天砖", "other"),
        ("这家火锅店生意火爆得很", "other"),
        ("买菜跟老板杀价杀了半天", "other"),
        ("超市东西贵得跟抢钱一样", "other"),
        ("我想死你们了", "other"),
        ("跳楼价甩卖 走过路过别错过", "other"),
        ("狼人杀谁来", "other"),
        ("我家娃考试考砸了 要被他爸打死了哈哈", "other"),
    ],
)
def test_hyperbole_is_not_an_emergency(clf: Classifier, text: str, label: str) -> None:
    result = clf.classify(text)
    assert not result.emergency, result
    assert result.label == label, result


@pytest.mark.parametrize(
    "text",
    [
        "路口追尾了,没人受伤",
        "不是着火,是邻居在烧秸秆",
        "没人拿刀,就是吵了几句",
        "我被锁在门外了 钥匙在屋里",
        "他拿刀切菜 切到手了",
        "我电脑卡住了",
    ],
)
def test_negated_or_harmless_wording_is_not_an_emergency(clf: Classifier, text: str) -> None:
    assert not clf.classify(text).emergency


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("昨天晚上有人在村口打架 现在已经散了", "report"),
        ("去年我家着过一次火 保险咋理赔", "consultation"),
        ("上个月我家电动车被偷了 到现在没消息 能查一下吗", "report"),
        ("上次打架的事 对方医药费到现在不给", "dispute"),
        ("我家孩子上周找到了 谢谢大家", "other"),
    ],
)
def test_past_incidents_are_not_emergencies(clf: Classifier, text: str, label: str) -> None:
    result = clf.classify(text)
    assert not result.emergency, result
    assert result.label == label, result


@pytest.mark.parametrize(
    "text",
    [
        # The past marker governs its own clause, not a later "now".
        "昨天他就说要弄死我 现在又拿着刀来了",
        "我老公天天打我 刚才又拿刀了",
        "孩子从昨天下午到现在还没回家",
        # Threats are live even when habitual or phrased as a condition.
        "他老是说要弄死我",
        "他说要是我报警就弄死我",
        # Publicity reaches only up to a local / present word; urgency overrides it.
        "村里刚搞完防火宣传 结果隔壁真着火了 快来",
        "电视上正放着新闻 我家楼下也打起来了 有人拿刀",
        # Explicit urgency overrides a past marker.
        "上次那个人又来了 拿着刀 快来人",
    ],
)
def test_blockers_are_scoped_not_message_wide(clf: Classifier, text: str) -> None:
    assert clf.classify(text).emergency, clf.classify(text)


@pytest.mark.parametrize(
    "text",
    [
        "电视上说有人被电信诈骗骗了几十万 咱们要注意",
        "新闻上说隔壁县有人持刀伤人 真吓人",
        "下周二学校搞防溺水安全教育 家长要签字",
        "如果家里着火了应该先干啥",
        "万一煤气泄漏了怎么处理 有没有人知道",
        "暑假到了 别让娃去河里游泳 容易溺水",
    ],
)
def test_publicity_media_hypothetical_are_not_emergencies(clf: Classifier, text: str) -> None:
    result = clf.classify(text)
    assert not result.emergency, result
    assert result.label not in ("report", "help"), result


# ------------------------------------------------------------------- lexicon mechanics


def test_concepts_are_spliced_into_patterns() -> None:
    tiny = Classifier.from_dict(
        {
            "concepts": {"kid": "孩子|娃", "gone": "不见了|丢了"},
            "emergency": {
                "entries": [{"name": "lost", "hint": "help", "any": ["({kid}).{0,3}({gone})"]}]
            },
        }
    )
    assert tiny.classify("娃不见了").emergency
    assert not tiny.classify("钥匙不见了").emergency


def test_unknown_concept_is_reported() -> None:
    with pytest.raises(ValueError, match="nope"):
        Classifier.from_dict(
            {"labels": {"report": [{"name": "x", "weight": 1, "any": ["{nope}"]}]}}
        )


def test_classification_is_fast(clf: Classifier) -> None:
    # The bot classifies every group message inline; keep it well under a millisecond
    # typically.  The bound here is loose so that a slow CI machine does not flake.
    import time

    texts = [r["text"] for r in _load(HELDOUT_SET)]
    clf.classify(texts[0])  # warm the opencc converter
    start = time.perf_counter()
    for text in texts:
        clf.classify(text)
    per_message = (time.perf_counter() - start) / len(texts)
    assert per_message < 0.005, f"{per_message * 1000:.2f} ms per message"


# --------------------------------------------------------------------- hard label cases


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("有人微信说能帮办低息贷款,要先交保证金,靠谱吗", "consultation"),
        ("我按他说的交了五千保证金,现在人联系不上了", "report"),
        ("邻居占了我家的宅基地", "dispute"),
        ("邻居把我家的车砸了", "report"),
        ("谢谢警官帮我找回了钱包", "other"),
        ("我的钱包丢了,谁捡到了麻烦联系我", "help"),
        ("希望晚上在村口多安排巡逻", "suggestion"),
        ("派出所周六上班吗", "consultation"),
        ("收到", "other"),
        ("🙏🙏🙏", "other"),
        # Boundaries (round 9): asking how / following up -> consultation even with crime words.
        ("上个月我报的那个手机被偷的案子有进展吗", "consultation"),
        ("被骗的钱还能要回来吗,要走什么程序", "consultation"),
        ("遇到家暴能报警吗", "consultation"),
        ("打架被拘留过,现在想去当兵有影响吗", "consultation"),
        ("被狗咬了,疫苗钱应该谁出", "consultation"),
        # A past wrong told to get it handled -> report.
        ("老板叫人把我们打了一顿", "report"),
        ("电动车停在超市门口,出来就没了,监控应该拍到了", "report"),
        ("网上投资的钱提不出来了", "report"),
        ("后山有人下兽夹套野猪", "report"),
        # Money owed between acquaintances, family duties -> dispute.
        ("三个儿子谁都不管老父亲,推来推去", "dispute"),
        ("租我家房子的人欠了两个月房租,人找不到了", "dispute"),
        # Feedback on public things and on the police service -> suggestion.
        ("出警太慢了,等了一个小时才来", "suggestion"),
        ("路边的树枝挡视线,希望有关部门修剪一下", "suggestion"),
        ("村头那口废井要不要封起来", "suggestion"),
        # Chatter, reposts, acknowledgements -> other.
        ("辛苦了,民警同志大半夜还在巡逻", "other"),
        ("收到,我明天带户口本过去", "other"),
        ("转发:公安局提醒,近期冒充客服退款诈骗高发", "other"),
        ("我家猫又把鱼偷吃了", "other"),
        # Round 10 boundaries.
        ("案子立案了,钱什么时候能退回来", "consultation"),
        ("春节哪几天能放烟花,有规定吗", "consultation"),
        ("户口本丢了,想补办去哪", "consultation"),
        ("建议在高速出口多安排点人查酒驾", "suggestion"),
        ("希望派出所电话能24小时有人接", "suggestion"),
        ("在集市上买的神药,回来一看是糖丸", "report"),
        ("夜里鸡圈里少了十几只鸡", "report"),
        ("有人把我家门口的车胎扎了", "report"),
        ("继母把房子过户到她儿子名下了", "dispute"),
        ("邻居的树倒过来砸坏了我家的瓦,他说是天灾不赔", "dispute"),
        ("我在镇上迷路了,派出所在哪", "help"),
        # Round 12: carpool chatter, a parking-space proposal, pay cut for work done.
        ("有没有人一起拼车去市里", "other"),
        ("菜市場門口亂停車,能不能劃個停車位", "suggestion"),
        ("我在他那干了一个月活,他说活干得不好只给一半钱", "dispute"),
        # Round 13: "好大烟" is smoke, not opium; a driver about to flee; legal liability;
        # film and joke talk; adverts; "which places" and two-way choice questions.
        ("我哋屋企廚房著火啦 好大煙 快啲嚟呀", "help"),
        ("小区门口车撞人了 人躺地上不动 司机想跑", "report"),
        ("狗咬人了主人要负什么法律责任", "consultation"),
        ("请问醉驾一般怎么处罚", "consultation"),
        ("昨晚看了个电影 里面杀人的场面吓死我了 有人知道叫啥名字吗", "other"),
        ("讲个笑话 警察问小偷为什么偷东西 小偷说我饿", "other"),
        ("我在写小说 主角被绑架了 警察一般怎么处理绑架案", "consultation"),
        ("炸鸡店开业 全场五折 快来抢", "other"),
        ("过年放烟花 县城哪些地方禁放", "consultation"),
        ("如果看到有人打架应该报警还是先拉开", "consultation"),
        ("遊戲裏買裝備被騙了兩千", "report"),
    ],
)
def test_hard_label_cases(clf: Classifier, text: str, label: str) -> None:
    assert clf.classify(text).label == label


# -------------------------------------------------------------- confidence / unclear


def test_no_signal_is_other_low_confidence_not_unclear(clf: Classifier) -> None:
    result = clf.classify("今天村里开会的照片")
    assert result.label == "other"
    assert result.confidence < 0.5
    assert not result.unclear
    assert result.matched == ()


def test_clear_message_is_confident(clf: Classifier) -> None:
    result = clf.classify("我家的牛被人偷了,报警")
    assert result.label == "report"
    assert result.confidence > 0.5
    assert not result.unclear


def test_conflicting_cues_are_unclear(clf: Classifier) -> None:
    # Lost (help) vs maybe stolen (report): the best guess is kept but flagged.
    result = clf.classify("钱包丢了,是不是被偷了")
    assert result.label in ("help", "report")
    assert result.unclear
    assert 0.0 <= result.confidence < 0.15


def test_exact_tie_is_unclear_and_uses_tie_break() -> None:
    tiny = Classifier.from_dict(
        {
            "settings": {"unclear_margin": 0.15},
            "labels": {
                "report": [{"name": "steal", "weight": 2, "any": ["偷"]}],
                "help": [{"name": "lose", "weight": 2, "any": ["丢"]}],
            },
        }
    )
    tie = tiny.classify("丢了还是被偷了")
    assert tie.label == "report"  # report precedes help in the default tie-break order
    assert tie.unclear and tie.confidence == 0.0
    clear = tiny.classify("被偷了")
    assert clear.label == "report" and not clear.unclear


def test_classification_shape(clf: Classifier) -> None:
    result = clf.classify("建议在水库边装护栏")
    assert isinstance(result, Classification)
    assert set(result.scores) == set(LABELS)
    assert all(isinstance(m, str) and ":" in m for m in result.matched)
    assert 0.0 <= result.confidence <= 1.0
    with pytest.raises(AttributeError):
        result.label = "other"  # type: ignore[misc]  # frozen dataclass


def test_unclear_threshold_comes_from_lexicon(tmp_path: Path) -> None:
    lexicon = (REPO / "handlers" / "lexicon.yaml").read_text(encoding="utf-8")
    strict = lexicon.replace("unclear_margin: 0.15", "unclear_margin: 0.99")
    assert strict != lexicon
    path = tmp_path / "lexicon.yaml"
    path.write_text(strict, encoding="utf-8")
    text = "我家的牛被人偷了,报警"
    assert not Classifier.from_file().classify(text).unclear
    assert Classifier.from_file(path).classify(text).unclear


def test_bad_regex_in_lexicon_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "lexicon.yaml"
    path.write_text(
        "labels:\n  report:\n    - name: broken\n      weight: 1\n      any: ['(unclosed']\n",
        encoding="utf-8",
    )
    with pytest.raises(ValueError, match="report:broken"):
        Classifier.from_file(path)


# ------------------------------------------------------------------------- evaluation


def test_evaluate_counts_and_format(clf: Classifier) -> None:
    rows = [
        {"text": "我的摩托车被偷了", "label": "report", "emergency": False},
        {"text": "好的", "label": "other", "emergency": False},
        # Deliberately wrong gold labels, so the report has errors to show.
        {"text": "今天天气真好", "label": "help", "emergency": True},
        {"text": "有人拿着刀在街上砍人", "label": "report", "emergency": False},
    ]
    report = evaluate(clf, rows)
    assert report.total == 4
    assert report.accuracy == pytest.approx(3 / 4)
    assert report.confusion["help"]["other"] == 1
    assert report.confusion["report"]["report"] == 2
    assert report.per_label["report"].support == 2
    assert report.per_label["help"].recall == 0.0
    assert report.per_label["other"].precision == pytest.approx(1 / 2)
    assert report.emergency_recall == 0.0
    assert report.emergency_precision == 0.0
    assert report.missed_emergencies == ["今天天气真好"]
    assert report.false_alarms == ["有人拿着刀在街上砍人"]

    text = report.format()
    assert "accuracy: 0.750" in text
    assert "confusion matrix" in text
    # The confusion row for gold "help" shows the miss in the "other" column.
    lines = text.splitlines()
    matrix_at = next(i for i, line in enumerate(lines) if line.startswith("confusion matrix"))
    help_row = next(line for line in lines[matrix_at:] if line.startswith("help "))
    assert help_row.split()[1:] == ["0", "0", "0", "0", "0", "1"]
    assert "missed emergencies (1)" in text
    assert "  - 今天天气真好" in text
    assert "false-alarm emergencies (1)" in text
    for label in LABELS:
        assert label in text


# --------------------------------------------------------------- learned second opinion


def test_shipped_model_equals_a_rebuild_from_the_data() -> None:
    from handlers.build_ngram_model import build, data_files, dumps, load_rows
    from handlers.ngram_model import DEFAULT_MODEL

    assert DEFAULT_MODEL.stat().st_size < 2_000_000
    rebuilt = dumps(build(load_rows(data_files())))
    assert DEFAULT_MODEL.read_text(encoding="utf-8") == rebuilt, (
        "handlers/ngram_model.json is stale: run PYTHONPATH=. python handlers/build_ngram_model.py"
    )


def test_model_predict_shape() -> None:
    from handlers.ngram_model import NgramModel

    model = NgramModel.from_file()
    probs, emergency = model.predict("廚房著火了,煙很大")
    assert set(probs) == set(LABELS)
    assert abs(sum(probs.values()) - 1.0) < 1e-3
    assert 0.0 <= emergency <= 1.0
    simplified = opencc.OpenCC("t2s").convert("廚房著火了,煙很大")
    assert model.predict(simplified) == (probs, emergency)  # script-invariant


def test_model_never_suppresses_a_rule_emergency(clf: Classifier) -> None:
    rules = Classifier.from_file(model_path=False)
    for path in [DEV_SET, HELDOUT_SET, *UNSEEN_SETS]:
        for row in _load(path):
            r, c = rules.classify(row["text"]), clf.classify(row["text"])
            assert c.emergency >= r.emergency, row["text"]
            if c.emergency and not r.emergency:
                assert "model:emergency" in c.matched
            if c.label != r.label:
                assert any(m.startswith(("model:", "forced:")) for m in c.matched)


def test_from_dict_is_rules_only() -> None:
    import yaml

    data = yaml.safe_load((REPO / "handlers" / "lexicon.yaml").read_text(encoding="utf-8"))
    assert Classifier.from_dict(data).model is None


@cache
def _fold_classifier(held_out: str) -> Classifier:
    """Rules + a model trained on every data file except ``held_out`` (cached per fold)."""
    from handlers.build_ngram_model import build, data_files, load_rows
    from handlers.ngram_model import NgramModel

    clf = Classifier.from_file(model_path=False)
    clf.model = NgramModel(build(load_rows(p for p in data_files(DATA) if p.name != held_out)))
    return clf


@pytest.mark.parametrize("path", UNSEEN_SETS, ids=lambda p: p.name)
def test_leave_one_file_out_model_only_helps(path: Path) -> None:
    # Honest-ish check of the second opinion: the model has not seen this file.  (The rules
    # have: every unseen batch was tuned on afterwards, so rules-only figures are optimistic.)
    rows = _load(path)
    rules = evaluate(Classifier.from_file(model_path=False), rows)
    combined = evaluate(_fold_classifier(path.name), rows)
    assert combined.emergency_recall >= rules.emergency_recall, combined.format()
    assert combined.emergency_precision >= EMERGENCY_PRECISION_GOAL, combined.format()


# ------------------------------------------------------------------ round 13 concepts


@cache
def _classifier(model: bool | None) -> Classifier:
    """One classifier per flavour (rules only / rules + model) for the long concept lists."""
    return Classifier.from_file(model_path=model)


@pytest.mark.parametrize("model", [False, None], ids=["rules", "full"])
@pytest.mark.parametrize(
    ("text", "label", "emergency"),
    [
        # A general question about a danger vs the same danger happening now.
        ("孩子吞纽扣怎么办", "consultation", False),
        ("孩子吞了颗纽扣怎么办 现在喘不上气", "help", True),
        ("闻到家里有煤气味的时候能不能开灯", "consultation", False),
        ("家里着火的时候应该先跑还是先报警", "consultation", False),
        # ... but "when I got home I smelt gas" is the smell now, not a general question.
        ("我回家的时候闻到一股煤气味能不能开灯", "help", True),
        ("我现在闻到家里有煤气味的时候能不能开灯啊", "help", True),
        # 救命 as slang in front of a bill; sports hyperbole; killed over and over in a game.
        ("救命 这个月电费怎么这么贵 哪里可以查明细", "consultation", False),
        ("球赛太刺激了 最后一秒绝杀 心脏病都要犯了", "other", False),
        ("打游戏被人砍死了十几次 气死我了", "other", False),
        ("我儿子打游戏被他爸骂了几句 拿了根绳子进屋把门反锁了 怎么叫都不开", "help", True),
        # A lost wallet in Cantonese is not an emergency; a breached dam is.
        ("喺巴士上面唔見咗個銀包 有冇人執到", "help", False),
        ("村里水库堤坝出了个口子 水哗哗往外冒", "help", True),
        ("炸鸡店开业 全场五折 快来抢", "other", False),
    ],
)
def test_round13_concepts(text: str, label: str, emergency: bool, model: bool | None) -> None:
    result = _classifier(model).classify(text)
    assert (result.label, result.emergency) == (label, emergency), result


@pytest.mark.parametrize("model", [False, None], ids=["rules", "full"])
@pytest.mark.parametrize(
    ("text", "label", "emergency"),
    [
        # Charcoal fumes / several people down at once; a fall down a slope; an elder alone unseen for days.
        ("屋里生了炭盆 两个老人都晕了", "help", True),
        ("我爸在山上放牛滚下坡了 腿好像断了", "help", True),
        ("独居的五保户老汉三天没出门了 喊他也不应", "help", True),
        # Straw burning that spread to a house is a fire, not a pollution report.
        ("烧秸秆把人家柴火堆引着了 火烧到屋了", "help", True),
        # Fish electrocuted by poachers are not a person in danger.
        ("有人在水库电鱼 鱼都电死了", "report", False),
        # Predatory loans are a crime, not a debt dispute.
        ("借了个套路贷 天天有人打电话骂我全家", "report", False),
        # Asking where to complain / how a standard is set / which benefit to apply for.
        ("卖过期化肥的店去哪里投诉", "consultation", False),
        ("征地补偿标准是怎么定的", "consultation", False),
        ("留守老人可以申请什么补贴", "consultation", False),
        # A scammer promising a benefit stays a report.
        ("有人冒充民政的说交钱就能办低保", "report", False),
        # Asking for service hours / broadcasts to change.
        ("村里广播能不能多播一下防溺水", "suggestion", False),
        # A vendor who vanished is not a missing person.
        ("卖假种子的找不到人了 苗都没出", "report", False),
        # A beaten family member now vs a past beating.
        ("拆迁的人把我妈打了 现在还在推房子", "report", True),
        ("几个社会青年把我弟打了一顿 想报案", "report", False),
        ("【通知】周六村委会免费体检", "other", False),
    ],
)
def test_round14_concepts(text: str, label: str, emergency: bool, model: bool | None) -> None:
    result = _classifier(model).classify(text)
    assert (result.label, result.emergency) == (label, emergency), result


@pytest.mark.parametrize("model", [False, None], ids=["rules", "full"])
@pytest.mark.parametrize(
    ("text", "label", "emergency"),
    [
        # "Normally back by six" is the routine, not a return: still missing now.
        ("儿子平常六点就回来了 今天到现在还没到家", "help", True),
        ("孙子已经回来了 谢谢大家", "other", False),
        # Objects thrown from a height while it goes on vs a question about the penalty.
        ("对面楼上有人一直往下扔酒瓶 楼下好多人", "report", True),
        ("高空抛物怎么处罚", "consultation", False),
        # A drunk driver described, then weaving on the road.
        ("那个开车的好像喝醉了 车开得摇摇晃晃的", "report", True),
        # A stranger leading a child away.
        ("有个不认识的女人牵着我家孩子往车站走", "report", True),
        # Something about to fall where people are.
        ("台风天小区门口招牌快要掉了 下面还有小孩在玩", "help", True),
        # Cheating scales, blocked fire lanes, pavements taken over: reports, not emergencies.
        ("卖菜的缺斤短两 秤有问题", "report", False),
        ("小区消防通道被私家车占了", "report", False),
        ("烧烤店天天占道经营 人行道都走不了", "report", False),
    ],
)
def test_round15_concepts(text: str, label: str, emergency: bool, model: bool | None) -> None:
    result = _classifier(model).classify(text)
    assert (result.label, result.emergency) == (label, emergency), result


@pytest.mark.parametrize("model", [False, None], ids=["rules", "full"])
@pytest.mark.parametrize(
    ("text", "label", "emergency"),
    [
        # Somebody at the edge of a height, crying or saying goodbye; the place may come first.
        ("桥栏杆外面站着个小伙子 一直往下看", "help", True),
        ("天台上坐着个男生 在发语音说下辈子再见", "help", True),
        ("对面楼顶有个女的坐在边上 一直在哭", "help", True),
        # ... but not people working, fishing or chatting up there, nor last night's story.
        ("天台上晒被子的阿姨坐在边上聊天", "other", False),
        ("昨晚有个人站在桥边上哭 我没敢过去 不知道后来怎么样了", "consultation", False),
        # A dog pack on a child now; a child pulled toward a vehicle; a relative beaten now.
        ("几条野狗把放学的孩子扑倒了在咬", "help", True),
        ("今天下午那群狗又在小区门口追着人咬", "help", True),
        ("有个女的想把孩子抱上她的三轮车 孩子一直在哭", "report", True),
        ("我哥喝醉了在打我嫂子 拦不住", "report", True),
        # The animal came home, the person did not; "has anyone seen my child".
        ("羊自己回来了 我爸还没回来 天都黑了", "help", True),
        ("谁看到我家孩子了 穿红衣服 五岁", "help", True),
        # Exasperation, felling a tree, a cry heard last night that turned out harmless.
        ("装修太吵了 吵得我想跳楼", "dispute", False),
        ("那棵树挡光 他说要砍了它", "dispute", False),
        ("前天半夜听到有人喊救命 后来才知道是两口子闹着玩 这种要报警吗", "consultation", False),
        # A smell already gone; a fight long dispersed; a lorry that only broke a pole.
        ("刚才闻到煤气味 开窗通风后现在没味了 要不要找人检查", "consultation", False),
        ("昨晚KTV门口有人打架 当时好像有人见血了 现在早散了", "report", False),
        ("有辆三轮把村口的电线杆撞歪了 人跑了", "report", False),
        # A routine look-in, an escaped pet, a boss gone with the wages, a near-miss scam.
        ("我妈一个人在老家 有空的话麻烦去看看她饭吃了没", "help", False),
        ("隔壁老王的狗跑出去了 看到的说一声", "help", False),
        ("老板卷款跑了 三个月工资都没发", "report", False),
        ("我爸差点被冒充公安的骗了 还好我拦住了 怎么跟他讲才能让他长点心", "consultation", False),
        # Proposals said as imperatives or about publishing records; legal and witness questions.
        ("建议村委会把每月的收支贴出来", "suggestion", False),
        ("路口那边装个减速带吧", "suggestion", False),
        ("如果有人闯进我家 我打伤了他算不算正当防卫", "consultation", False),
        ("前天那个车祸我是目击者 需要去做笔录吗", "consultation", False),
        ("我的停车位又被人占了 叫他挪还骂人", "dispute", False),
        # Chatter: pets, thanks to an officer, a habitual drunk rider (a report, not now).
        ("我家小狗好可爱 今天学会握手了", "other", False),
        ("张sir辛苦了 大热天还在路口执勤", "other", False),
        ("多亏了刘警官帮忙 孩子才找到", "other", False),
        ("邻居每次喝多了都骑摩托回家 上周还摔了一次", "report", False),
    ],
)
def test_round16_17_concepts(text: str, label: str, emergency: bool, model: bool | None) -> None:
    result = _classifier(model).classify(text)
    assert (result.label, result.emergency) == (label, emergency), result


@pytest.mark.parametrize("model", [False, None], ids=["rules", "full"])
@pytest.mark.parametrize(
    ("text", "label", "emergency"),
    [
        # Cantonese read through the normaliser: 揸住 拿着, 跌低 摔倒, 點叫都唔應 怎么叫都不应,
        # 未返 没回, 佢部電話冇人聽, 我間屋 我的屋, 講吓咋 唔好當真 (only joking), 琴晚 昨晚.
        ("阿sir快啲嚟 有個男人喺公園揸住支鐵棍追住啲細路打", "report", True),
        ("阿爺喺樓梯跌低咗 點叫都唔應 額頭仲流緊血", "help", True),
        ("阿媽朝早出去飲茶 到而家都未返 平時三點前一定返到屋企 佢部電話冇人聽", "help", True),
        ("佢話再唔還錢就燒咗我間屋", "report", True),
        ("我真係想殺咗佢 講吓咋 唔好當真", "other", False),
        ("琴晚隔離屋又打交 打到三點 今朝見到佢哋門口有血", "report", False),
        ("有人喺家長群傳話學校門口有人搶細路 係咪真㗎", "consultation", False),
        # Taiwan wording: 捷運 機車 騎士 鷹架.
        ("捷運站有個小男孩找不到媽媽 一直在哭", "help", True),
        ("機車騎士撞倒阿嬤後直接騎走了 阿嬤躺在地上不動", "report", True),
        ("工地鷹架塌下來 底下壓著兩個工人", "help", True),
        # A near miss, a false alarm called off, a device that "saves lives": calm.
        ("孩子昨天在河边差点掉下去 建议河边装个护栏", "suggestion", False),
        ("村口冒的烟是老李在烧荒 已经问过了 大家不用再报警了", "other", False),
        ("楼道里应该装几个烟感报警器 关键时刻能救命", "suggestion", False),
        # A stranger gripping or luring a child or an elder; held until money is paid.
        ("孩子在学校门口被人拉住不放 我不认识那个人", "report", True),
        ("我奶奶在菜市场被一个男的拽着往巷子里走 她根本不认识他", "report", True),
        ("菜市场有个男的拿玩具哄小孩 叫她跟他去后面巷子里", "report", True),
        ("讨债的把我爸关在他们店里 说还了钱才放人", "report", True),
        # A drunk driver about to drive; an overdose counted in pills; a runaway vs a threat.
        ("网约车司机满身酒气 还要接着拉客 已经把车发动了", "report", True),
        ("表哥发消息说吞了十几片药 现在人迷迷糊糊的", "help", True),
        ("我外甥跟家里吵完架离家出走了 手机关机 一晚上没消息", "help", True),
        ("我女儿天天嚷着要离家出走 说了好多年也没走过 现在在房间里打游戏呢", "other", False),
        # Not a missing person: a child safe with the other parent, an office that does not
        # answer, a platform gone with the money.
        (
            "离婚后孩子判给我 每次他接走都拖着不送回来 这次又晚了一天 孩子在他家好好的 就是想让人管管他",
            "dispute",
            False,
        ),
        ("小区电梯坏了三天 我妈腿脚不好下不了楼 打物业电话也没人接 能帮忙催一下吗", "help", False),
        ("在一个理财群里充了三万 说好一周返利 现在群解散了 客服也找不到了", "report", False),
        # Threatened arson with the lighter in hand; "again" last night vs "again" now.
        ("那个醉汉喊着要把小卖部的房子烧了 手里还拿着打火机", "report", True),
        ("昨晚邻居家男的又打老婆了 今早看到她脸上都是淤青", "report", False),
        ("上次被偷过 又有人在撬门", "report", True),
        # Proposals put as questions; quarrels in a group chat; a joke with a crime word.
        ("菜市场门口的水沟没盖 能加个盖板吗", "suggestion", False),
        ("业主群里有人天天针对我 说我家狗咬人 我想告她", "dispute", False),
        ("我老公说我是劫匪 把他的零花钱全抢走了😂", "other", False),
    ],
)
def test_round18_19_concepts(text: str, label: str, emergency: bool, model: bool | None) -> None:
    result = _classifier(model).classify(text)
    assert (result.label, result.emergency) == (label, emergency), result


@pytest.mark.parametrize("model", [False, None], ids=["rules", "full"])
@pytest.mark.parametrize(
    ("text", "label", "emergency"),
    [
        # Similes and heat hyperbole: the danger word is only a comparison.
        ("隔壁装修电钻响得跟打仗一样 从早到晚 能不能让他们小声点", "dispute", False),
        ("这太阳晒得人快要冒烟了 地里的菜都蔫了", "other", False),
        ("他拿着菜刀在楼道里追他老婆 跟疯了一样", "report", True),
        # 求救 / 报警 naming a fixture or a channel.
        ("建议水库边装个求救按钮 再多放几个救生圈", "suggestion", False),
        ("建议把报警电话印在每栋楼的门口 老人记不住号码", "suggestion", False),
        # A mistaken alarm, a fight over and the crowd gone.
        ("还以为谁家着火了 跑下去一看原来是楼下在熏腊肉", "other", False),
        ("刚才广场上两拨人吵架 吵完了 人都走了 没啥事了", "other", False),
        ("刚才广场上两拨人打起来了 有人拿着砖头 快来人", "report", True),
        # A retro tag or a recurring sighting: a report, not a danger now.
        ("村委会门口的宣传栏被人踹坏了 前天夜里的事 早上扫地的阿姨发现的", "report", False),
        ("这几天夜里老听到有人在河边用电打鱼 噼里啪啦的", "report", False),
        ("仓库后门老有几个小年轻半夜聚在那里 用锡纸烧着吸东西", "report", False),
        # Counterfactual warnings inside a proposal.
        ("楼道里堆满了纸箱 建议物业清一清 不然哪天着火了都没地方跑", "suggestion", False),
        ("那栋老楼只有一个楼梯 真烧起来逃都逃不出去 建议加装个外挂消防梯", "suggestion", False),
        # Official bulletins and videos are media.
        ("看了通报里那个工厂爆炸的视频 太惨了 大家下班路上都小心点", "other", False),
        # Things dropped in water; a pickpocket long gone; a cut lock.
        ("我的钥匙刚才掉进下水道了 有没有人能帮忙捞一下", "help", False),
        ("孩子刚才在河边玩 脚一滑掉进河里了 快来人", "help", True),
        ("钱包在公交车上被偷了 下车才发现 小偷早就没影了", "report", False),
        ("电动车停在楼下 早上起来车不见了 链子锁被剪断扔在地上", "report", False),
        # A wasp nest, a cat stuck up high, a tree across the road: jobs, not rescues.
        ("阳台外面有个马蜂窝 越来越大了 谁能帮忙弄掉", "help", False),
        ("有个老人在巷子里被一群马蜂蛰了 脸都肿了 喘不上气", "help", True),
        ("我家小猫爬到树上下不来了 叫了一上午", "help", False),
        ("大风把村口的电线杆刮倒了 横在路上 车过不去", "help", False),
        # A locksmith who does not answer is not a beating.
        ("门锁坏了进不了家 开锁师傅电话一直打不通 谁有别的开锁电话", "help", False),
        # Somebody overdue and unreachable; somebody setting light to things.
        ("我爸下午开三轮去镇上卖菜 到现在都没回 手机一直关机", "help", True),
        ("有个男的在加油站后面的草垛那里点火 已经烧起来了", "report", True),
        # Impersonation of the police in the group; refund quarrels; a joking threat.
        ("群里有个自称派出所民警的人在私信大家 让交什么户籍更新费", "report", False),
        ("有个客人吃完饭说菜里有头发不肯付钱 在店里吵了一个钟头", "dispute", False),
        ("笑死 我妈说我再不找对象就打断我的腿", "other", False),
    ],
)
def test_round20_21_concepts(text: str, label: str, emergency: bool, model: bool | None) -> None:
    result = _classifier(model).classify(text)
    assert (result.label, result.emergency) == (label, emergency), result


@pytest.mark.parametrize("model", [False, None], ids=["rules", "full"])
@pytest.mark.parametrize(
    ("text", "label", "emergency"),
    [
        # Somebody living alone who answers neither door nor phone, the door locked inside.
        ("我舅舅独居 两天没接电话了 去敲门也没人应 门是从里面反锁的", "help", True),
        ("隔壁独居的王奶奶一早上没出门 喊她也没反应 门从里头插着", "help", True),
        ("如果独居老人敲门没人应该怎么办 要不要直接报警", "consultation", False),
        ("楼上那户欠了三个月物业费 敲门也不开 电话也不接", "dispute", False),
        # Gift / game cards bought and scratched for a caller right now; one long past.
        ("我妈现在在超市 对方冒充客服让她买充值卡 已经在刮卡号了 劝不动", "report", True),
        ("我爸正在便利店买礼品卡 说客服要他解除分期扣款 拦都拦不住", "report", True),
        ("去年我也被骗买过点卡 后来才知道是诈骗", "report", False),
        # Fuel carried while threatening to burn.
        ("有个男的拎着一桶汽油在老板店门口 说不还钱就一起烧了", "report", True),
        # A lost hearing aid, a lost-child facility, a fight avoided, storm aftermath, an engine
        # that will not start, relatives merely away, dumped oil.
        ("我家孩子在公园玩的时候弄丢了他的助听器 有人捡到吗", "help", False),
        ("建议在景区设几个走失儿童求助点", "suggestion", False),
        ("老板欠了我们两个月工资 大家想找人调解 不想闹到打起来", "dispute", False),
        ("暴雨过后我家围墙倒了 砸坏了邻居的菜地 邻居要我赔钱", "dispute", False),
        ("车在路边打不着火了 谁能帮忙推一下", "help", False),
        ("停电了 老人手机没电联系不上在外地的儿子 能不能帮忙充个电", "help", False),
        ("有人往河里倒废机油 水面一层油", "report", False),
    ],
)
def test_round22_23_concepts(text: str, label: str, emergency: bool, model: bool | None) -> None:
    result = _classifier(model).classify(text)
    assert (result.label, result.emergency) == (label, emergency), result


@pytest.mark.parametrize("model", [False, None], ids=["rules", "full"])
@pytest.mark.parametrize(
    ("text", "label", "emergency"),
    [
        # Cantonese read through the normaliser: 困咗 / 大肚婆 / 好辛苦 (unwell), 打緊交 (fighting
        # now), 個頭爆咗 (head split), 前日 / 搵唔返 / 蚊, 唔俾我哋行 (not letting us pass),
        # 頭先 + 電話唔聽, 鎖匙, 跌咗 (dropped), 咸濕 (lewd), 人工 (wages), 蕩失路 / 扭親,
        # 水浸, 拖住 / 喊住 (crying), 撬緊 / 快D黎, 泊 (park) / 鬧 (scold), 打機 / 開大聲.
        ("升降機困咗兩個人，入面有個大肚婆，按鐘冇人應", "help", True),
        ("电梯困了两个人 里面有个孕妇 按铃没人应", "help", True),
        ("捷運站電梯困住人了，裡面有位孕婦說很不舒服", "help", True),
        ("电梯成日困人，建议物业换部新嘅", "suggestion", False),
        ("街市門口有兩個男人打緊交，其中一個個頭爆咗", "report", True),
        ("菜市场门口两个男的正在打架 一个头都打破了", "report", True),
        ("我阿媽前日俾人呃咗三千蚊買假藥，而家搵唔返嗰個人", "report", False),
        ("隔籬屋喺巷口起咗道鐵閘，唔俾我哋行", "dispute", False),
        ("邻居在巷子口装了道铁门 不给我们走", "dispute", False),
        ("我細佬頭先send咗段錄音俾我話唔想活，而家打佢電話都唔聽", "help", True),
        ("鎖匙留咗喺屋企入面，我鎖咗自己喺門外，有冇開鎖電話", "help", False),
        ("喺小巴度跌咗部手機，有冇好心人執到", "help", False),
        ("有個QQ號成日send咸濕片俾我個仔，佢先12歲", "report", False),
        ("老細欠咗我哋三個月人工，而家話間舖執咗", "dispute", False),
        ("街尾間沐足店好似唔正經，成晚有人出出入入", "report", False),
        ("我同阿媽行山蕩失路，佢扭親腳行唔到，天就黑", "help", True),
        ("我们在山上迷路了 手机只剩百分之五的电 天快黑了", "help", True),
        ("水浸到二樓樓梯，阿爺困咗喺三樓，水仲喺度升", "help", True),
        ("水淹到一楼了 我们一家困在二楼 水还在涨", "help", True),
        ("今天下大雨 水漫到门口了 大家出门注意", "other", False),
        ("有個阿叔拖住個細路仔行去停車場，個細路喊住話唔識佢", "report", True),
        ("有個賊撬緊我樓下架電單車，快D黎", "report", True),
        ("對面舖頭架貨車成日泊喺我門口，我架車出唔到，講佢仲鬧我", "dispute", False),
        ("樓上後生仔日日打機打到三點，開好大聲", "dispute", False),
        ("有人話交一萬蚊可以幫我個仔入公立學校，靠唔靠譜㗎", "consultation", False),
        ("通知可唔可以印大隻字啲，老人家睇唔清", "suggestion", False),
        ("可以用本地话录点防诈骗的短视频 老人家看字看不懂", "suggestion", False),
        # A pet that wandered off is not a missing person.
        ("我隻狗走失咗三日，白色柴犬，有冇人見過", "help", False),
        # TV drama and hearsay retold with a shudder (聽講 = 听说): the danger is a story.
        ("今晚台慶劇有人揸槍指住人質，拍得好逼真", "other", False),
        ("这部剧里有人拿刀劫持人质 拍得很逼真", "other", False),
        ("聽講上個禮拜隔籬村有人斬人，真係好恐怖", "other", False),
        ("听说隔壁村有人溺水了 好可怕 大家看好孩子", "other", False),
        # Fraud transfers still going (还在转, voice input 还再转) vs asking before paying.
        ("我妈跟一个自称客服的人视频 已经转了五千 还再转 咋个办", "report", True),
        ("我老汉在跟一个说帮他解冻账户的人打视频 转了三千了 还在转", "report", True),
        ("上个月我被骗转了三千 现在还在想办法追回", "report", False),
        ("刚才有人打电话说我儿子出车祸了 要我马上转三万 这是不是骗子", "consultation", False),
        ("有人打电话说我儿子出车祸了 我妈现在正在银行转钱 快去拦", "report", True),
        ("刚才有人打电话说是银行的 我没给他验证码就挂了 应该没得事吧", "consultation", False),
        # Disputes: a debtor hiding (借条, 躲起来不见人), 说和, figurative 夹在中间, earth on a field.
        ("借了两万给表弟 写了借条 现在人躲起来不见人 电话也不接", "dispute", False),
        ("借咗兩萬俾表弟，有借條，而家佢躲起嚟唔見人", "dispute", False),
        ("两个儿子为分地的事吵得不可开交 想请村里来说和一下", "dispute", False),
        ("婆婆和媳妇天天吵 我夹在中间两头受气", "dispute", False),
        ("隔壁修房子把渣土全倒在我家菜地里 菜都埋了", "dispute", False),
        ("对面那户在我们共用的过道上砌了堵墙 不让我们走", "dispute", False),
        # Charcoal burnt for heating is not suicide talk.
        ("天冷了烧炭取暖的老人多 建议村里广播提醒开窗通风", "suggestion", False),
        ("天凍燒炭取暖嘅老人家多，建議村委上門提醒開窗", "suggestion", False),
        # Told afterwards or second-hand, nothing going on now: extortion at school "again and
        # again", needles left behind, spray-paint, lewd pictures sent online.
        ("女儿说班上有个同学老被高年级的堵在楼梯口要钱 都好几次了", "report", False),
        ("后山那个废弃的猪场里头有人吸那个东西 地上全是锡纸和针筒", "report", False),
        ("有人在村委会的墙上喷漆写了好多脏话", "report", False),
        ("有人用微信小号天天给我女儿发黄色图片 她才初一", "report", False),
        ("这几晚都有辆面包车停在学校门口 车里有人盯着娃儿看 怪得很", "report", False),
        # South-western voice input: 以经 (已经), 遭偷 (被偷), 莫得 (没有), 一哈 (一下).
        ("後山起火了 以經燒到房子邊上了 快來人", "help", True),
        ("茶园边上的摄像头装一个嘛 去年茶叶遭偷了三回", "suggestion", False),
        ("前年那个弯道翻过一辆车 还好人莫得事 现在装了护栏放心多了", "other", False),
        # Wrongdoers make it a report: youngsters lighting a fire, a drunk driver fleeing a crash.
        ("有两个娃儿在山上点火 火已经烧起来了 往村子这边烧过来了", "report", True),
        ("两辆车撞了 其中一个司机满身酒气想开车跑 另一辆车里有人卡住出不来", "report", True),
        # Service questions and proposals: a home visit to do the paperwork, longer hours,
        # praise for officers checking for drink-driving.
        ("我爸九十岁了瘫在床上 户口本上的信息要改 能不能上门来办", "consultation", False),
        ("能不能把办证大厅的下班时间推迟到六点半 上班的人根本来不及", "suggestion", False),
        ("警官辛苦了 大冷天还在路口查酒驾 给你们点赞", "other", False),
    ],
)
def test_round24_25_concepts(text: str, label: str, emergency: bool, model: bool | None) -> None:
    result = _classifier(model).classify(text)
    assert (result.label, result.emergency) == (label, emergency), result


@pytest.mark.parametrize("model", [False, None], ids=["rules", "full"])
@pytest.mark.parametrize(
    ("text", "label", "emergency"),
    [
        # Fraud still being paid on a live video call (视频里 / 視訊裡 is the call, not a clip), or
        # on the way to the bank or the post office to pay; a clip watched is not.
        ("对方还在视频里让我再转一笔 说不转就要冻结我的账户", "report", True),
        ("他現在還在視訊裡叫我繼續匯款,說不匯就凍結帳戶", "report", True),
        ("在视频里看到有人被骗了三万 大家小心", "other", False),
        ("我妈接到电话说我被抓了 现在正在去农商行的路上要汇钱 快帮忙拦一下", "report", True),
        ("阿公說要匯錢給一個自稱法官的人,現在已經在往郵局的路上了", "report", True),
        ("帮网友换绑了手机号 现在微信登不上 里面的钱也被转走了", "report", False),
        # A passenger driven off the route and not let out; a detour overcharged is not.
        ("打的出租车司机不按导航走 一直往山里开 车门锁着不让我下车", "report", True),
        ("計程車司機一直往偏僻的地方開,我說要下車他都不停,門也鎖著", "report", True),
        ("网约车司机绕路多收了我三十块 怎么投诉", "consultation", False),
        # A breakdown with somebody in danger (lorries brushing past, a child or a pregnant wife
        # aboard, alone in the dark with a dying phone); a plain breakdown is a tow request.
        ("车在高速应急车道爆胎了 旁边大货车一辆接一辆擦着过 孩子还在车上", "help", True),
        ("機車在山路上拋錨了,天已經黑了,手機只剩一點電,我一個人好害怕", "help", True),
        ("车子半路熄火了 老婆怀孕七个月 在车里", "help", True),
        ("车在小区门口没油了 有没有人能送点油过来", "help", False),
        ("車子拋錨在停車場,有沒有拖車的電話", "help", False),
        ("车在高速上爆胎了 怎么叫救援", "help", False),
        ("电动车没电了 下着雨 我一个人推回家 好累", "help", False),
        # Debts and rent owed, the debtor silent or putting it off (还在拖): a dispute.  A son
        # who promised to be back for dinner and cannot be reached is missing.
        ("租我铺面的那个老板 三个月租金没交 现在打电话也不接", "dispute", False),
        ("借給朋友三萬塊,說好年底還,現在還在拖,電話都不接", "dispute", False),
        ("我儿子说好晚上还回来吃饭 到现在都没回 电话也打不通", "help", True),
        ("講了好幾次都袂聽,樓上半夜還在拖椅子", "dispute", False),
        # Pets by any name (泰迪, 橘貓), lost or stuck: nobody in danger; a child chasing one is.
        ("我家泰迪昨天傍晚在公园走丢了 到现在还没找到 有人看到吗", "help", False),
        ("我家的橘貓從窗戶跑出去,到現在還沒回來", "help", False),
        ("小猫卡在空调外机和墙中间出不来了 有人有梯子吗", "help", False),
        ("孩子去追跑丢的狗 到现在都没回来 天都黑了", "help", True),
        ("我家金毛跑丢了 我爸出去找到现在还没回来 电话也打不通", "help", True),
        # Facilities for lost children proposed.
        ("建议庙会的时候设个走失儿童登记处", "suggestion", False),
        ("建議在夜市入口設一個走失孩童服務台", "suggestion", False),
        # Door-to-door "gas inspectors": suspicious, a report; forcing their way in is not calm.
        ("有两个人说是燃气公司的 挨家挨户上门检查 看着不太像 已经往三单元去了", "report", False),
        ("有陌生人說要免費檢查瓦斯管線,挨家挨戶敲門,感覺怪怪的", "report", False),
        ("说要检查燃气的那两个人闯进我家了 我妈一个人在家", "report", True),
        # Stalking over several days told calmly is a report; the stalker there now is not.
        ("这几天每天下班都有个男的跟着我到小区门口 已经连续四天了 好害怕", "report", False),
        ("有個男的好幾天都在我家樓下晃,還跟蹤我去上班,好怕", "report", False),
        ("那个跟踪我好几天的男的现在又跟在我后面 我躲在便利店里不敢出去", "report", True),
        # Too drunk to stand, driving off; a stranger pulling a girl somewhere out of sight; a
        # toddler climbing toward a drop nobody can reach; a Minnan child (囝仔) not home.
        ("那个男的喝得站都站不稳 还硬要开车走 往镇上去了", "report", True),
        ("隔壁阿伯喝到東倒西歪,現在騎機車要回去了", "report", True),
        ("有个陌生男人把一个小女孩往小树林里拽 孩子一直在哭", "report", True),
        ("有個不認識的男人把國中女生拉進巷子裡", "report", True),
        ("两岁的女儿自己把窗户打开了 爬到窗台上 家里窗户没装防护栏", "help", True),
        ("我家四歲的把自己反鎖在陽台,一直往欄杆上爬", "help", True),
        ("孩子喜欢往窗台上爬 建议家家户户都装防护栏", "suggestion", False),
        ("阮囝仔下課到現在還沒回來,電話也打不通", "help", True),
        # Labels: slang chatter; lewd messages from a stranger who comes back after a block; a
        # volunteer asked for a ride; patrols, flags, parking bays and talks proposed; an
        # incident put on record (报备); a buyer abusing a seller by private message.
        ("绝绝子 下班路上的晚霞太好看了", "other", False),
        ("破防了 又加班到半夜 栓Q", "other", False),
        ("有个陌生号码天天给我发露骨的话 拉黑了又换号打来", "report", False),
        ("有個不認識的人一直用LINE傳下流的訊息給我,封鎖了又換帳號加我", "report", False),
        ("村里有没有志工可以帮忙载我妈去镇上打针", "help", False),
        ("晚上十点以后可以多巡几趟吗 最近老有人在那边飙车", "suggestion", False),
        ("海邊那段可以立幾面警示旗嗎", "suggestion", False),
        ("停車場可以畫一些停車格嗎,現在亂停一通", "suggestion", False),
        ("希望派出所每季度在社区办一次反诈讲座", "suggestion", False),
        ("可以在电梯里贴点防诈骗的提示吗 好多老人被骗去买保健品", "suggestion", False),
        ("跟您报备一下 前天我们店门口两辆车刮了 已经私了了", "report", False),
        ("二手平台上卖了部游戏机 买家收货后说有问题要退款 天天私信骂我", "dispute", False),
    ],
)
def test_round26_27_concepts(text: str, label: str, emergency: bool, model: bool | None) -> None:
    result = _classifier(model).classify(text)
    assert (result.label, result.emergency) == (label, emergency), result


def test_normalise_round28_wu_forms() -> None:
    # Wu (Shanghai / Jiangnan): 阿拉, 侬, 伊, 勿 / 覅, 伐 closing a question, 屋里厢, 今朝,
    # 交关, 辰光, 寻, 困觉 (sleep), 拉勿牢, "好 + verb" as a proposal.
    assert normalise("阿拉屋里厢今朝停电了伐?") == "我们家里今天停电了吗?"
    assert normalise("侬讲伊勿来 覅去寻伊") == "你讲他不来 不要去找他"
    assert normalise("交关冷 啥人晓得辰光") == "很冷 谁晓得时候"
    assert normalise("阿婆在困觉 两个人拉勿牢") == "阿婆在睡觉 两个人拉不住"
    assert normalise("弄堂口好装几盏灯伐") == "弄堂口可以装几盏灯吗"
    # "好 + verb + 几张" proposes even without a Wu marker.
    assert normalise("门口好贴几张海报") == "门口可以贴几张海报"
    # ... while Mandarin keeps its own words: 伊朗, 砍伐, 寻找, 明朝 (the dynasty), 好用.
    assert normalise("伊朗 砍伐树木 寻找 明朝的瓷器 这个软件好用") == (
        "伊朗 砍伐树木 寻找 明朝的瓷器 这个软件好用"
    )
    assert normalise("请勿靠近 阿拉斯加犬") == "请勿靠近 阿拉斯加犬"


@pytest.mark.parametrize("model", [False, None], ids=["rules", "full"])
@pytest.mark.parametrize(
    ("text", "label", "emergency"),
    [
        # Wu dialect read through the normaliser.
        ("阿拉屋里厢煤气味道交关重 阿爷叫勿醒", "help", True),
        ("阿拉隔壁有两个人打相打 一个拿了把刀", "report", True),
        ("派出所礼拜天开门伐?", "consultation", False),
        ("小区门口好装几只摄像头伐", "suggestion", False),
        ("菜场门口好贴幾張防騙海報", "suggestion", False),
        # A case already reported, followed up; vandalism found the next morning.
        ("前两个礼拜被人骗了五千 已经报过案了 想问问有没有进展", "report", False),
        ("上個月被騙的事已經報過案了,想補充一下對方的電話號碼", "report", False),
        # The anniversary of a drowning; a parrot that shouts 救命; a cat that made me jump.
        ("明天是我爸落水走了五周年 去河边给他烧点纸", "other", False),
        ("今天是我哥淹死的忌日 心里很难受", "other", False),
        ("我家八哥现在会喊救命了 哈哈 每天喊好几遍", "other", False),
        ("家里的鹦鹉学会叫“救命”了,把来做客的阿姨吓一跳,哈哈", "other", False),
        # A parcel stuck in transit; 养老院 is a care home, not an elder-support dispute.
        ("急死了 快递在中转站好几天都不动 是给孙子买的礼物", "other", False),
        ("养老院明天上午组织体检 家属不用来", "other", False),
        # A colleague's harassment reported on her behalf, told calmly.
        ("我室友一直被厂里的主管发骚扰消息 她不敢说 我帮她反映一下", "report", False),
        ("同事這陣子老被組長傳騷擾訊息,她不敢講,我替她說一下", "report", False),
        # A phone dropped in a drain; a car that will not start in daylight; a cat on a roof.
        ("钥匙掉进下水道的缝里了 够不着 谁有磁铁借一下", "help", False),
        ("車子在路邊熄火了,打不著,不急,有沒有拖車電話", "help", False),
        ("我家猫跑到仓库的铁皮顶上下不来了 喵了一晚上", "help", False),
        # A work injury already treated, argued over; wages owed, the boss not answering.
        ("我叔在工地摔断了手 老板只赔了三千块就不管了 还要做手术", "dispute", False),
        ("工頭欠我們八個人兩個月工錢,現在電話不接,能不能幫忙聯繫", "dispute", False),
        # Children fighting, the parents quarrelling, mediation asked for: a dispute.
        ("两家小孩在院子里打架 大人又吵起来了 能不能请民警出面调解", "dispute", False),
        # A staged fight for a video; a live attack still is an emergency.
        ("广场那边打架的原来是在拍短视频 不用报警了", "other", False),
        ("工友被工头从楼梯上推下去了 躺在地上不动 工头还在骂人 快报警", "report", True),
    ],
)
def test_round28_29_concepts(text: str, label: str, emergency: bool, model: bool | None) -> None:
    result = _classifier(model).classify(text)
    assert (result.label, result.emergency) == (label, emergency), result


def test_normalise_round30_31_word_spacing() -> None:
    # Word-spaced writing (a space between most words, pieces of one to three characters)
    # is joined before matching, in either script ...
    assert (
        normalise("买茶叶 的 客服 叫我 扫码 解冻 我卡里 钱 在 扣")
        == "买茶叶的客服叫我扫码解冻我卡里钱在扣"
    )
    assert normalise("小孫子 下午 去 河邊 到現在 沒 回來") == "小孙子下午去河边到现在没回来"
    assert normalise("派出所 几点 上班 我 要 办证 打 110") == "派出所几点上班我要办证打110"
    # ... while ordinary chat, where a space stands for a comma, keeps its spaces.
    assert normalise("喝了点酒 头有点晕 不开车了") == "喝了点酒 头有点晕 不开车了"
    assert normalise("着火了 快来人 村西头的草垛烧起来了") == "着火了 快来人 村西头的草垛烧起来了"
    assert normalise("回复 王警官:今晚有暴雨,请关好门窗 —— 收到 谢谢提醒") == (
        "回复 王警官:今晚有暴雨,请关好门窗 —— 收到 谢谢提醒"
    )
    # Latin words keep their spaces even in a spaced message.
    assert normalise("我 在 古镇 东门 wifi 密码 是 多少") == "我在古镇东门 wifi 密码是多少"


@pytest.mark.parametrize("model", [False, None], ids=["rules", "full"])
@pytest.mark.parametrize(
    ("text", "label", "emergency"),
    [
        # Word-spaced writing read as one run.
        ("卖 玉石 的 人 叫我 转 保证金 我 银行卡 现在 还在 一直 扣钱", "report", True),
        ("賣 玉石 的 人 叫我 轉 保證金 我 銀行卡 現在 還在 一直 扣錢", "report", True),
        ("我 女儿 早上 去 河边 放牛 到现在 没 回来 天 快 黑了", "help", True),
        ("姑娘 跟 同学 去 河边 同学 回来了 她 没回来", "help", True),
        ("派出所 几点 上班 我要 办 暂住证", "consultation", False),
        # Forwarded publicity and notices: other; asking whether it is true: consultation.
        (
            "【防骗提醒】转发周知:有人冒充医保局打电话说医保卡被冻结,要求转账解冻,这是诈骗!",
            "other",
            False,
        ),
        (
            "【防騙提醒】轉發給家人:有人冒充醫保局打電話說醫保卡被凍結,要求轉帳解凍,都是詐騙!",
            "other",
            False,
        ),
        (
            "转自家长群:最近有人开黑色轿车在学校附近抢小孩,已经丢了两个孩子,这个是真的吗?",
            "consultation",
            False,
        ),
        # A proposal that mentions near misses stays a suggestion.
        ("建议村口那个弯道装面凸面镜,上个星期我骑车差点被货车撞到", "suggestion", False),
        # Harassment by messages over weeks, told calmly: a report.
        ("從上個月開始一直有人給我打騷擾電話,換了好多號碼,還說知道我住哪,想報警", "report", False),
        # A stranger hanging about, no act: a report.
        ("这几天总有个男的在幼儿园门口转 还问小孩家住哪", "report", False),
        # A buyer who took the goods and switched off his phone: not a missing person.
        ("收購商 拉走 我 兩車 香蕉 說 過兩天 給錢 現在 電話 關機", "report", False),
        # Landslide road questions and proposals; a landslide burying someone is an emergency.
        ("泥石流 冲了 路 去 县城 哪条 路 能 走", "consultation", False),
        ("塌方路段晚上要有人提醒 警示牌太近了", "suggestion", False),
        ("山上 塌方 了 我哥 的 车 被 埋了 人 在 里面", "help", True),
        # Children's scuffle, parents now quarrelling over medical fees: a dispute.
        ("兩個小孩在學校打架擦破點皮 現在兩邊家長吵著要醫藥費", "dispute", False),
        # A lost child found: other.
        ("下午走丢的孙子找到了 谢谢大家帮忙转发", "other", False),
        # A break-in or smashed car found afterwards: a theft to report, not an emergency.
        ("早上起来发现车窗被人砸了 车里的钱包没了", "report", False),
        ("店門被人撬開了 收銀台的錢都被偷了", "report", False),
        # A burglar seen on the home camera rummaging now.
        ("家里监控看到有个人正在翻我卧室的抽屉 我在外地 快去看看", "report", True),
    ],
)
def test_round30_31_concepts(text: str, label: str, emergency: bool, model: bool | None) -> None:
    result = _classifier(model).classify(text)
    assert (result.label, result.emergency) == (label, emergency), result


@pytest.mark.parametrize("model", [False, None])
@pytest.mark.parametrize(
    ("text", "label", "emergency"),
    [
        # An engine left running with the keys inside is a help call, not a fire.
        ("钥匙落在车里了 车门锁上 发动机还着着火 怎么办", "help", False),
        ("鑰匙落在車裡了 車門鎖上 發動機還著著火 怎麼辦", "help", False),
        # A relative who borrowed money and stopped answering: a debt, not a missing person.
        ("我表弟借我三万说过年还 现在微信不回电话也不接", "dispute", False),
        # Poisoning as a topic of publicity, reckless riding with a rule proposed.
        ("建议社区冬天多宣传一下一氧化碳中毒 很多老人不懂", "suggestion", False),
        ("摩托车天天在村道上横冲直撞 希望定个规矩管一管", "suggestion", False),
        # A snowman knocked over: vandalism.
        ("孩子们堆的雪人被人踢倒了 还踩得稀烂", "report", False),
        # Somebody's stove smoke blowing into the yard: a neighbour quarrel.
        ("对门烧煤的烟天天往我家院子里飘 说了也不听", "dispute", False),
        # A calm memory of somebody pulled out of the ice: no emergency.
        ("唠唠嗑 前年冬天河上有人掉冰窟窿 好在捞上来了 想起来还后怕", "other", False),
        # Replies: a theft seen last night is a report, a child still not found is now.
        ("回复 小李:我昨晚也看见有人在撬楼下的电动车 前天也有", "report", False),
        ("回复 张姐:你家孩子还没找到吗 我们去河那边帮着找", "help", True),
    ],
)
def test_round32_33_concepts(text: str, label: str, emergency: bool, model: bool | None) -> None:
    result = _classifier(model).classify(text)
    assert (result.label, result.emergency) == (label, emergency), result


@pytest.mark.parametrize("model", [False, None], ids=["rules", "full"])
@pytest.mark.parametrize(
    ("text", "label", "emergency"),
    [
        # 打 / 砍 / 推 / 砸 with a thing as the object is work, not violence; noise hyperbole
        # (吵死了, 闹死了) is no death; night noise from a KTV or a building site is a report.
        ("工地半夜还在打地基，烦死了", "report", False),
        ("对面KTV天天唱到两点，闹死了", "report", False),
        ("楼上装修一直在砸墙，吵得要命", "dispute", False),
        ("村里有人偷偷砍了集体的杨树，开三轮拉走了", "report", False),
        # A wheelchair, pram or vehicle stuck: a push or a tow, nobody trapped.
        ("婴儿车轮子卡在排水沟的缝里了，推不出来，谁来帮一下", "help", False),
        ("三轮车陷进雪里了，推不动，能来几个人帮忙推一下吗", "help", False),
        ("货车陷在田埂边的泥里了，有没有拖车", "help", False),
        # Waste dumped and the smell of pollution: an environmental report, no fire.
        ("养猪场天天往河里排粪水，臭得不行", "report", False),
        ("有个厂晚上偷排污水，河里一股臭味", "report", False),
        # Frightened by a scam call, nobody outside: no stalking emergency.
        ("我爸接了个冒充公安的电话，吓得不敢出门", "report", False),
        # Asking whether it is safe before doing what the caller wants: a question.
        ("有人让我下载个APP开远程协助帮我办退款，能信吗", "consultation", False),
        ("自称银行客服的让我开屏幕共享，安不安全？", "consultation", False),
        # Following girls for days, told calmly: a report, not danger now.
        ("有个男的天天在女生宿舍楼下转悠，好几天了", "report", False),
        ("最近老有个陌生人跟着放学的小学生，有点担心", "report", False),
        # Fuel sold by the can: an illegal trade.
        ("村口小卖部在卖散装汽油，用饮料瓶装的", "report", False),
        # Labels: a rule asked about, a service wished for, a neighbour's drip, haggling over
        # damages, signing off, a fire lane blocked, a fraud attempt told afterwards.
        ("小区里准不准养大型犬", "consultation", False),
        ("要是派出所晚上也能办户口就好了", "suggestion", False),
        ("楼上的空调冷凝水天天滴到我家窗台上，说了也不管", "dispute", False),
        ("骑电动车蹭了人家一下，对方狮子大开口要五千", "dispute", False),
        ("先不聊了，回头再说", "other", False),
        ("小区消防通道又被人堆满了杂物", "report", False),
        ("差点被骗了，对方冒充快递客服说要理赔，还好我没点链接", "report", False),
        # True emergencies of the same kinds stay emergencies.
        ("有人拿刀砍人，就在菜市场门口", "report", True),
        ("村口有个男的拿砍刀在砍人", "report", True),
        ("车掉河里了人还在里面", "help", True),
        ("三轮车翻沟里了，我爸压在车底下出不来", "help", True),
        ("车陷在河滩上了，水一直在涨，人在车里出不来", "help", True),
        ("暴雨 车开进涵洞里熄火了 水已经淹到车门了", "help", True),
        ("我老公喝多了推我，把我推倒在地上，我头磕破了", "report", True),
        ("有人一直跟着我，我现在躲在超市里不敢出去", "report", True),
        ("有个男的跟着我好几天了，现在就在我家楼下敲门", "report", True),
        ("客服叫我共享屏幕，我已经开了，现在还在转钱", "report", True),
        ("客服说我的账户异常要我转到安全账户 我现在在银行排队 要不要转啊", "report", True),
        ("KTV门口两伙人拿酒瓶打起来了，有人满头血", "report", True),
    ],
)
def test_round34_35_concepts(text: str, label: str, emergency: bool, model: bool | None) -> None:
    result = _classifier(model).classify(text)
    assert (result.label, result.emergency) == (label, emergency), result


# ------------------------------------------------------------------ round 36 concepts


@pytest.mark.parametrize("model", [False, None], ids=["rules", "full"])
@pytest.mark.parametrize(
    ("text", "label", "emergency"),
    [
        # The textbook scam question: what a caller, text or app asks me to do, and "is it real?"
        ("有个自称公安局的打电话让我转账到安全账户,是真的吗", "consultation", False),
        ("有個自稱檢察院的打電話叫我把錢轉到安全賬戶，真的假的", "consultation", False),
        ("短信说我快递丢了要理赔，让我下载个软件共享屏幕，靠谱不", "consultation", False),
        ("网上找兼职，对方叫我先交五百保证金才能接单，可信吗", "consultation", False),
        ("有个客服打电话要我报验证码，说不报会影响征信，能信吗", "consultation", False),
        ("群里有人喊我刷单，做任务返佣金，是不是诈骗", "consultation", False),
        # Defrauded and paid (report:fraud_paid), told in both scripts; not an emergency.
        ("我被骗了，已经转了五万，怎么办", "report", False),
        ("俺刷单被骗了三千多，对方现在不回消息了", "report", False),
        ("我妈被冒充客服的骗了，转给骗子两万块", "report", False),
        ("我被騙了，前後轉了四次一共八萬", "report", False),
        ("在一个app上充了会员说能赚钱，现在退不了也提不了现", "report", False),
        # A near miss is a fraud attempt, not money paid.
        ("差点被骗了八千，幸亏银行把转账拦下来了", "report", False),
        # Northern dialect: 干仗, 耍钱, 夜儿个后晌, 电驴子, 瞅, 找着了, 贼 + adjective.
        ("俺们屯子那嘎达有俩人干仗呢，拿着镐把子，快来", "report", True),
        ("村东头老王家夜儿个后晌有人耍钱，耍到半夜", "report", False),
        ("喝了两瓶啤的骑电驴子回家算醉驾不", "consultation", False),
        ("休渔期从啥时候开始啊，别让人罚了款", "consultation", False),
        ("能不能把咱派出所的值班电话印在村里的公告栏上", "suggestion", False),
        ("前天俺的摩托在集上丢了，能帮调下监控不", "report", False),
        ("大雪封路好几天了，俺娘的降压药快吃完了，谁能帮着捎点", "help", False),
        ("俺爹一个人在老家，电话打了一天都不接，能不能麻烦民警过去瞅一眼", "help", False),
        ("钥匙掉井里了，还能捞出来不", "help", False),
        ("俺在厂里干活砸伤了手，老板给了一千块就不管了", "dispute", False),
        ("俺爷走丢那事，后来在集上找着了，谢谢大伙", "other", False),
        ("有人往河里跳了！快来人啊", "help", True),
        ("后院有人偷着种罂粟，俺瞅见好几棵了", "report", False),
        # 贼 the thief stays a thief; true emergencies of the same kinds stay emergencies.
        ("这两天贼冷，大伙出门多穿点", "other", False),
        ("有贼进屋了，正在翻抽屉，快来", "report", True),
        ("客服让我转到安全账户，我现在正在转，还要转吗", "report", True),
        ("有人掉冰窟窿里了，快来人", "help", True),
        ("俺爹老年痴呆，早上出门到现在没找着，外边零下三十度", "help", True),
    ],
)
def test_round36_concepts(text: str, label: str, emergency: bool, model: bool | None) -> None:
    result = _classifier(model).classify(text)
    assert (result.label, result.emergency) == (label, emergency), result


# ------------------------------------------------------------------ round 37 concepts


@pytest.mark.parametrize("model", [False, None], ids=["rules", "full"])
@pytest.mark.parametrize(
    ("text", "label", "emergency"),
    [
        # Stalking over days told calmly (stalking_days: 连着 / 接连 N 天, photographing children).
        ("小学门口有个男的连着好几天在拍放学的女孩，感觉不对劲", "report", False),
        ("这几天总有个陌生人在幼兒園門口偷拍小朋友", "report", False),
        ("有个男的接连三个晚上在我家楼下转悠", "report", False),
        # ... but a stranger there now, reaching for a child, stays an emergency.
        ("有个男的现在在幼儿园门口拍小孩，还想把孩子往车上拉", "report", True),
        # A child who locked themselves in a room at home is a locksmith's job (self_locked_in).
        ("小孩自己把卫生间门反锁了，门打不开，在里面哭", "help", False),
        ("儿子自己把房门反锁了，钥匙找不到，在里面哭", "help", False),
        # A child locked in a car, silence and gas, or a fire stay emergencies.
        ("孩子被锁在车里了，车里很热，快来人", "help", True),
        ("孙子把自己锁在房间里，敲门没动静，屋里有股煤气味", "help", True),
        ("屋里着火了，孩子还锁在里面", "help", True),
        # A gas leak already shut off (gas_shut_off) is a fitter's job; hissing, dizziness or a
        # valve still in question stays an emergency.
        ("燃气灶漏气了，我已经把总阀关了，窗也开了，麻烦派人来修一下", "help", False),
        ("液化氣罐漏氣，閥門已經關好了，窗戶也打開了", "help", False),
        ("煤气漏了，阀门关了还在嘶嘶响", "help", True),
        ("煤气漏了，关了阀门，老人还是头晕想吐", "help", True),
        ("家里煤气味很重，要不要先把总阀关了", "help", True),
        ("煤气管漏气，阀门关了吗我也不知道，屋里味很大", "help", True),
        ("楼道里煤气味很冲，该不该先把总阀关了", "help", True),
        # Is it legal? (违不违法 / 犯不犯法 / 合不合法: offence_question).
        ("在自家地里烧秸秆犯不犯法", "consultation", False),
        ("河边野炊生火合不合法啊", "consultation", False),
        ("晚上在小区放烟花违不违规", "consultation", False),
        # Fire lanes and escape routes blocked (public_way_blocked).
        ("小区的消防车道天天被那几辆私家车占着", "report", False),
        ("商场的安全出口被货箱堵住了", "report", False),
        # Vandalism done with a tool or a substance.
        ("村里新装的路灯被人用石头砸了", "report", False),
        ("我家门锁被人用胶水堵死了", "report", False),
        ("公告栏被人用红漆涂了一片", "report", False),
        # A thing left at a place and "anyone seen it?" (lost); papers lost with a journey due
        # (stranded_without_id); how to reissue stays a question.
        ("我的钱包落在菜市场了，有人捡到吗", "help", False),
        ("孩子的水壶忘在公交车上了，有人看见没", "help", False),
        ("钱包在汽车站弄丢了，下午还要赶车去省城，怎么办", "help", False),
        ("身份证丢在外地了，回不了家，怎么办", "help", False),
        ("身份证丢了怎么补办", "consultation", False),
        ("身份证丢了，明天要坐高铁，能不能办个临时身份证", "consultation", False),
        # Praise of an officer for past help is chatter (officer_praise).
        ("李警官真负责，上回半夜还帮我找回了电动车", "other", False),
        ("社区的王民警人特别好，之前帮我爸办低保跑前跑后的", "other", False),
        # Somebody else's fraud from the news or hearsay is talk (others_fraud_news); one's own
        # family's loss stays a report.
        ("听说隔壁村有个老太太被骗了五万，真可怕", "other", False),
        ("网上看到外省有人被冒充公安的骗走了一百多万，好吓人", "other", False),
        ("我妈也被骗了，跟新闻里说的一模一样，转了三万", "report", False),
    ],
)
def test_round37_concepts(text: str, label: str, emergency: bool, model: bool | None) -> None:
    result = _classifier(model).classify(text)
    assert (result.label, result.emergency) == (label, emergency), result


@pytest.mark.parametrize("model", [False, None], ids=["rules", "full"])
@pytest.mark.parametrize(
    "text",
    [
        "有个自称公安局的打电话让我转账到安全账户,是真的吗",
        "有個自稱公安局的打電話讓我轉賬到安全賬戶，是真的嗎",
        "对方让我下载个软件开屏幕共享，说是退款，靠谱吗",
        "有人叫我交保证金才能放款，是骗子吗",
    ],
)
def test_scam_question_gets_the_anti_fraud_warning(text: str, model: bool | None) -> None:
    """handlers.intake sends the warning for a consultation with scam_check matched."""
    result = _classifier(model).classify(text)
    assert result.label == "consultation" and not result.emergency, result
    assert "consultation:scam_check" in result.matched, result
    assert "report:fraud_paid" not in result.matched, result


@pytest.mark.parametrize("model", [False, None], ids=["rules", "full"])
@pytest.mark.parametrize(
    ("text", "paid"),
    [
        ("我被骗了，已经转了五万", True),
        ("被骗了三千，对方把我拉黑了", True),
        ("我妈转给骗子两万块", True),
        ("刷单被骗了，前后转了六次", True),
        ("充了会员说能提现，现在退不了", True),
        ("我被騙了，已經匯了兩萬過去", True),
        ("差点被骗了，还好没转", False),
        ("有人让我转账到安全账户，是真的吗", False),
        ("转发：外地一位老人被骗走十万，大家注意", False),
    ],
)
def test_fraud_paid(text: str, paid: bool, model: bool | None) -> None:
    result = _classifier(model).classify(text)
    assert ("report:fraud_paid" in result.matched) is paid, result
    if paid:
        assert result.label == "report" and not result.emergency, result


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("俺俩在那嘎达干仗", "俺俩在那里打架"),
        ("夜儿个后晌耍钱", "昨天下午赌博"),
        ("贼冷贼拉响", "很冷很响"),
        ("有贼进屋了", "有贼进屋了"),
        ("小偷小贼", "小偷小贼"),
        ("后来找着了", "后来找到了"),
        ("还在找着呢", "还在找着呢"),
        ("半夜个", "半夜个"),
        ("咋整", "怎么办"),
        ("嘎哈呢 瞅瞅", "干什么呢 看看"),
        ("鱼都快整没了", "鱼都快弄丢了"),
        ("让卖药的忽悠了", "让卖药的骗了"),
    ],
)
def test_northern_normalisation(text: str, expected: str) -> None:
    assert normalise(text) == expected


# ------------------------------------------------------------------ linear time


def _long_texts() -> dict[str, str]:
    """20,000-character messages (the bridge's limit): real chat run together, and the
    shapes that used to cost the square of the length (digit runs, bare punctuation, one
    word repeated, text without a single clause break)."""
    import random

    messages = [row["text"] for path in [DEV_SET, HELDOUT_SET, *UNSEEN_SETS] for row in _load(path)]
    rng = random.Random(36)
    return {
        "chat": "，".join(messages)[:20000],
        "chat_unpunctuated": "".join(messages).replace("，", "").replace("。", "")[:20000],
        "digits": "1" * 20000,
        "commas": "，" * 20000,
        "help_repeated": "救命" * 10000,
        "ok_repeated": "好的" * 9999 + "吗",
        "yesterday_repeated": "昨天" * 10000,
        "random_cjk": "".join(chr(rng.randint(0x4E00, 0x9FA5)) for _ in range(20000)),
    }


@pytest.mark.parametrize("kind", sorted(_long_texts()))
def test_long_messages_classify_in_linear_time(kind: str) -> None:
    """Classification time grows with the length, not its square (it blocks the event loop).

    A ratio, not a clock: the best of a few runs of a 20,000-character text against the best
    of a few 200-character ones (different texts each run, so no cache helps), which a busy
    machine slows alike.  Linear is ~100x; the old quadratic scans were ~10,000x.
    """
    import time

    clf = _classifier(None)
    long_text = _long_texts()[kind]
    chat = _long_texts()["chat"]
    clf.classify(chat[:50])  # warm-up: opencc and the model are loaded lazily

    def best(texts: list[str]) -> float:
        times = []
        for text in texts:
            start = time.perf_counter()
            clf.classify(text)
            times.append(time.perf_counter() - start)
        return min(times)

    short = best([chat[i * 997 : i * 997 + 200] for i in range(1, 8)])
    # Each run differs by its last characters, so the per-text caches start cold.
    long = best([long_text[: -1 - i] + "啊" * (i + 1) for i in range(3)])
    assert long < 300 * short, (kind, long, short)


@pytest.mark.parametrize("model", [False, None], ids=["rules", "full"])
@pytest.mark.parametrize(
    ("text", "label", "emergency"),
    [
        # Digits and signs only: a number answering an officer's question, "110", a code.
        ("13600002222", "other", False),
        ("+86 139-1234-5678", "other", False),
        ("110", "other", False),
        ("12345", "other", False),
        ("！！！", "other", False),
        # Numbers inside words are one token to the model: they decide nothing.
        ("我要实名 赵小红 13912340002", "other", False),
        ("我女儿走丢了，我电话13912345678", "help", True),
        ("有人拿刀砍人 地址是幸福路188号", "report", True),
    ],
)
def test_numbers_alone_are_no_emergency(
    text: str, label: str, emergency: bool, model: bool | None
) -> None:
    result = _classifier(model).classify(text)
    assert (result.label, result.emergency) == (label, emergency), result.matched


def test_random_phone_numbers_are_never_emergencies() -> None:
    import random

    rng = random.Random(7)
    classifier = _classifier(None)
    numbers = [f"1{rng.randint(3, 9)}{rng.randrange(10**9):09d}" for _ in range(300)]
    assert [n for n in numbers if classifier.classify(n).emergency] == []
    assert [n for n in numbers if classifier.classify(f"我的电话{n}").emergency] == []
