"""Receipts without peers: the order of delivery states, the return path, Twilio's callback form,
DSNs in the shapes MTAs send (and hostile files that are none), final warnings, the new facts."""

from __future__ import annotations

import json
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peers import mta
from renewd.act.receipts import final_steps
from renewd.config.plugins import SettingsError
from renewd.core.cycles import CycleState
from renewd.core.delivery import ORDER, SMS_ORDER, Receipt, replaceable
from renewd.core.facts import derive
from renewd.delivery.dsn import read_report
from renewd.delivery.receipts import ReturnPath, message_key, twilio_receipt
from renewd.policy.loader import load_policy, policy_files
from renewd.policy.model import Policy

from support import ROOT, mailbox

VERP = ReturnPath.parse("bounces+{id}@bounce.example.com", "senders.email")
SPEC = ROOT.parent / "shared" / "peers" / "twilio" / "twilio_api_v2010.json"


def moves(channel: str, states: list[str]) -> str:
    """The state a message ends in when receipts come in this order."""
    current = ""
    for state in states:
        if current in replaceable(channel, state):
            current = state
    return current


@pytest.mark.parametrize(
    ("channel", "arriving", "final"),
    [
        ("sms", ["queued", "sent", "delivered"], "delivered"),
        ("sms", ["delivered", "sent"], "delivered"),  # a late `sent` never overwrites it
        ("sms", ["sent", "queued", "sending"], "sent"),
        ("sms", ["undelivered", "delivered"], "undelivered"),  # the first final state stays
        ("sms", ["delivered", "delivered", "delivered"], "delivered"),  # replays
        ("sms", ["delivered", "read"], "read"),
        ("sms", ["failed"], "failed"),
        ("email", ["delayed", "bounced"], "bounced"),
        ("email", ["bounced", "delayed"], "bounced"),  # a late delay warning changes nothing
        ("email", ["delayed", "delayed"], "delayed"),
        ("email", ["soft-bounced", "bounced"], "soft-bounced"),
        ("email", ["delivered", "bounced"], "bounced"),  # one hop took it, a later one did not
        ("email", ["bounced", "delivered"], "bounced"),
    ],
)
def test_states_only_move_forward(channel: str, arriving: list[str], final: str) -> None:
    assert moves(channel, arriving) == final


@pytest.mark.skipif(not SPEC.is_file(), reason="Twilio's API description is not beside the project")
def test_every_outbound_status_in_twilios_published_api_has_a_place() -> None:
    schemas = json.loads(SPEC.read_text(encoding="utf-8"))["components"]["schemas"]
    published = set(schemas["message_enum_status"]["enum"])
    assert set(SMS_ORDER) == published - {"receiving", "received"}  # inbound only


def test_a_return_path_names_its_message_and_nothing_else() -> None:
    address = VERP.address(message_key(4711))
    assert address == "bounces+4711@bounce.example.com"
    assert VERP.match(address) == 4711
    assert VERP.match("BOUNCES+4711@Bounce.Example.COM".replace("BOUNCES", "bounces")) == 4711
    assert VERP.address("alert-0123abcd") is None  # an operator alert has no outbox row
    for other in (
        "bounces+4711@elsewhere.com",
        "bounces@bounce.example.com",
        "bounces+12x@bounce.example.com",
        "bounces+-1@bounce.example.com",
        "renewals@mail.example.com",
        "",
    ):
        assert VERP.match(other) is None, other
    suffixed = ReturnPath.parse("r-{id}-b@x.example", "senders.email")
    assert suffixed.match(suffixed.address(message_key(9)) or "") == 9


@given(st.integers(min_value=1, max_value=2**63 - 1))
def test_every_outbox_id_goes_round_the_return_path(action_id: int) -> None:
    address = VERP.address(message_key(action_id))
    assert address is not None and VERP.match(address) == action_id


@pytest.mark.parametrize(
    "template",
    [
        "bounces@bounce.example.com",  # no {id}
        "bounces+{id}{id}@bounce.example.com",
        "bounces@{id}.example.com",  # in the domain
        "Bounces <bounces+{id}@bounce.example.com>",
        "bounces+{id}@",
        "bounces+{id}@bounce.example.com\r\nBcc: x@y",
        "bounces+{id}@bouncé.example.com",
        42,
    ],
)
def test_a_return_path_that_cannot_work_is_refused(template: object) -> None:
    with pytest.raises(SettingsError, match=r"senders\.email: return_path must"):
        ReturnPath.parse(template, "senders.email")


SID = "SM" + "0123456789abcdef" * 2
ACCOUNT = "AC" + "0" * 32


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {"MessageSid": SID, "MessageStatus": "delivered", "AccountSid": ACCOUNT},
            Receipt("sms", "delivered", provider_id=SID),
        ),
        (
            {
                "MessageSid": SID,
                "MessageStatus": "undelivered",
                "ErrorCode": "30003",
                "AccountSid": ACCOUNT,
            },
            Receipt("sms", "undelivered", "30003", "unreachable destination handset", None, SID),
        ),
        (
            {"MessageSid": SID, "MessageStatus": "failed", "ErrorCode": "x", "AccountSid": ACCOUNT},
            Receipt("sms", "failed", provider_id=SID),
        ),
        ({"MessageSid": SID, "MessageStatus": "received", "AccountSid": ACCOUNT}, "status"),
        ({"MessageSid": SID, "MessageStatus": "delivered", "AccountSid": "AC1"}, "account"),
        ({"MessageSid": "SMnope", "MessageStatus": "sent", "AccountSid": ACCOUNT}, "MessageSid"),
        ({"MessageStatus": "sent", "AccountSid": ACCOUNT}, "MessageSid"),
    ],
)
def test_a_status_callback_form_makes_a_receipt_or_says_why_not(
    fields: dict[str, str], expected: Receipt | str
) -> None:
    found = twilio_receipt(fields, ACCOUNT)
    if isinstance(expected, Receipt):
        assert found == expected
    else:
        assert isinstance(found, str) and expected in found


# -- bounces ------------------------------------------------------------------------------------

TO = "user@example.cn"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            mta.postfix("bounces+12@bounce.example.com", TO),
            Receipt(
                "email",
                "bounced",
                "5.1.1",
                "550 5.1.1 <user@example.cn>: Recipient address rejected: User unknown in "
                "virtual mailbox table",
                action_id=12,
            ),
        ),
        (
            mta.postfix(
                "bounces+13@bounce.example.com",
                TO,
                "4.4.1",
                "X-Postfix; connect to mx.example.cn[192.0.2.1]:25: Connection timed out",
                "delayed",
            ),
            Receipt(
                "email",
                "delayed",
                "4.4.1",
                "connect to mx.example.cn[192.0.2.1]:25: Connection timed out",
                action_id=13,
            ),
        ),
        (
            mta.exim("bounces+14@bounce.example.com", TO, "5.0.0", "smtp; 550 5.2.2 mailbox full"),
            Receipt("email", "bounced", "5.0.0", "550 5.2.2 mailbox full", action_id=14),
        ),
        (
            mta.exim("bounces+15@bounce.example.com", TO, "4.0.0"),
            Receipt("email", "soft-bounced", "4.0.0", "", action_id=15),
        ),
        (
            mta.gmail("bounces+16@bounce.example.com", "someone@gmail.com"),
            Receipt(
                "email",
                "bounced",
                "5.1.1",
                "550-5.1.1 The email account that you tried to reach does not exist. Please try "
                "550-5.1.1 double-checking the recipient's email address for typos or 550 5.1.1 "
                "unnecessary spaces. https://support.google.com/mail/?p=NoSuchUser - gsmtp",
                action_id=16,
            ),
        ),
        (
            mta.gmail("bounces+17@bounce.example.com", "full@gmail.com", "4.2.2", "delayed"),
            Receipt("email", "delayed", "4.2.2", action_id=17),
        ),
    ],
    ids=["postfix", "postfix-delay", "exim", "exim-soft", "gmail", "gmail-delay"],
)
def test_reports_in_the_shapes_mtas_send_name_their_message(data: bytes, expected: Receipt) -> None:
    report = read_report(data, VERP)
    assert report.problem == ""
    assert report.receipt is not None
    if expected.detail or expected.status != "delayed":
        assert report.receipt == expected
    else:
        assert report.receipt.status == expected.status and report.receipt.code == expected.code


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (mta.auto_reply("bounces+12@bounce.example.com"), "not a delivery status notification"),
        (b"", "not a delivery status notification"),
        (b"\x00\xff\xfe binary", "not a delivery status notification"),
        (
            mta.postfix("bounces+12@bounce.example.com", TO).replace(
                b"Status: 5.1.1", b"Status: 9"
            ),
            "no recipient with a valid Action and Status",
        ),
        (
            mta.postfix("bounces+12@bounce.example.com", TO).replace(
                b"Action: failed", b"Action: shrugged"
            ),
            "no recipient with a valid Action and Status",
        ),
        (
            mta.postfix("bounces+12@bounce.example.com", TO).replace(
                b'report-type="delivery-status"', b'report-type="disposition-notification"'
            ),
            "not a delivery status notification",
        ),
        (
            mta.postfix("bounces+12@bounce.example.com", TO).replace(
                b"message/delivery-status", b"text/plain"
            ),
            "no message/delivery-status part",
        ),
    ],
)
def test_what_is_no_readable_report_says_why(data: bytes, problem: str) -> None:
    report = read_report(data, VERP)
    assert report.receipt is None and problem in report.problem


def test_a_report_about_no_message_of_ours_is_neither_a_receipt_nor_malformed() -> None:
    report = read_report(mta.postfix("someone@elsewhere.com", TO), VERP)
    assert report.receipt is None and report.problem == ""


SAMPLE = mta.gmail("bounces+16@bounce.example.com", "someone@gmail.com")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=4096))
def test_any_bytes_at_all_are_read_without_an_exception(data: bytes) -> None:
    report = read_report(data, VERP)
    assert (report.receipt is None) or report.problem == ""


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, len(SAMPLE) - 1), st.binary(max_size=8)), min_size=1, max_size=6
    )
)
def test_a_damaged_report_is_read_without_an_exception(edits: list[tuple[int, bytes]]) -> None:
    data = bytearray(SAMPLE)
    for at, replacement in edits:
        data[at : at + len(replacement)] = replacement
    report = read_report(bytes(data), VERP)
    if report.receipt is not None:
        assert report.receipt.channel == "email" and report.receipt.status in ORDER["email"]


# -- what the policy sees -------------------------------------------------------------------------


def test_final_warnings_are_the_last_step_before_the_deletion_on_each_channel(
    shipped_policy: Policy,
) -> None:
    assert final_steps(shipped_policy) == {"email": 29, "sms": 29}
    example = load_policy(policy_files(ROOT / "examples" / "policies" / "receipts"))
    assert final_steps(example) == {"email": 27, "sms": 28}


@pytest.mark.parametrize(
    ("undelivered", "email_bounced", "sms_undelivered"),
    [
        (frozenset(), False, False),
        (frozenset({"email"}), True, False),
        (frozenset({"sms"}), False, True),
        (frozenset({"email", "sms"}), True, True),
    ],
)
def test_the_new_facts_say_what_the_ledger_knows_of_the_cycles_last_messages(
    undelivered: frozenset[str], email_bounced: bool, sms_undelivered: bool
) -> None:
    box = mailbox(-27)
    facts = derive(
        box,
        date(2026, 12, 1),
        is_paid=True,
        available=box.balance,
        cycle=CycleState(undelivered=undelivered),
    )
    assert (facts["email_bounced"], facts["sms_undelivered"]) == (email_bounced, sms_undelivered)
