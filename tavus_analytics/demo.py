"""Realistic synthetic Tavus callbacks, seeded and reproducible.

:func:`generate` yields callback bodies in every shape described in the project's notes on what
Tavus sends (``TAVUS.md``), in arrival order; :func:`write` stores them straight into a database
through :meth:`tavus_analytics.store.Store.insert_batch` (the collector's own classification and
dedupe path); :func:`post` sends them to a running collector over HTTP.

What is made
------------
* ``conversations`` conversations (ids ``c`` + 12 hex digits) spread over ``days`` days before
  ``end``, busier on weekdays and in European and American working hours, growing slowly over
  the period; on 4 to 6 replicas (``r`` + 9 hex digits, some more popular than others) and five
  personas (support, sales, interview coach, language tutor, travel concierge), each with its own
  system prompt, limits, perception queries and post-call actions.
* Per conversation, in time order: ``system.replica_joined`` (often with its
  ``system.pal_joined`` twin, ``face_id`` = the replica id, same timestamp; missing for some
  calls that failed to start), ``system.shutdown`` (every documented reason, the timeouts with
  and without the " reached" suffix, ``internal error occurred at step N`` for a few N), then
  most often ``application.transcription_ready`` about 1 ms later (a few KB of system prompt,
  then 2 to 60 turns; newer payloads with per-message timestamps as ISO strings or Unix floats,
  ``seconds_from_start``, ``duration``, ``inference_id``, tool calls and knowledge-base
  ``system`` messages), and, depending on the persona, ``application.recording_ready`` (older
  ``bucket_name``/``s3_key``/``duration`` shape early in the period, newer
  ``storage_provider``/``storage_uri`` later) or ``application.recording_copy_failed``,
  ``application.perception_analysis`` (Markdown with bold sections) about 3 minutes after the
  call or ``application.perception_unavailable``, ``application.post_call_action_executed`` 2 to
  3 minutes after, and ``application.memory_consolidation``.
* What the users say (:mod:`tavus_analytics.demo_callers`): each call has a theme (technical
  trouble, billing, cancellation, scheduling, or the persona's own: a product demo, interview
  practice, travel, a language lesson), asks two or three of the theme's questions, each in one
  of several wordings, and has a mood (neutral, sour, delighted, relieved); language lessons
  and a few support and sales calls are in Spanish or French. Billing calls come after the
  invoice run (the 1st to the 3rd), cancellations grow over the period, technical trouble and
  sour calls surge during an outage, and one replica's support calls go sour more often. The
  text is drawn from a random stream of each call's own, so it never changes the callbacks'
  number, order or timing.
* Durations follow the reason: about the persona's ``max_call_duration`` for
  ``max_call_duration``, a few seconds to half an hour with a long tail when the participant
  left, the persona's ``participant_absent_timeout`` (or nothing at all) for no-shows, which
  have no user turn. About 0.5 % of conversations lose their join callback.
* Replica training callbacks (``ready`` before the period for the replicas in use, a few
  ``ready`` and ``error`` ones during it) and video generation callbacks (about one video per ten
  conversations, each sending ``queued``, ``generating``, then ``ready`` or ``error``, and for a
  few ``deleted`` days later).
* About 2 % of conversations still in progress at ``end`` (joined, no shutdown yet), about 1 % of
  callbacks delivered twice with the same bytes (the store counts the second copy as a
  duplicate), and out-of-order arrivals: each callback arrives after a random network delay of
  tens of milliseconds (sometimes seconds), so a transcript often arrives before its shutdown,
  and the shutdown of some very short calls arrives before their join.

Reproducibility
---------------
Everything comes from one ``random.Random(seed)``: the same ``conversations``, ``seed``, ``end``
and ``days`` give byte-identical bodies and arrival times, on any machine. ``end`` defaults to
the fixed :data:`DEFAULT_END` (2026-11-01T00:00:00Z), not to the current time, so that demo data
and the figures made from it do not change from one day to the next. Callbacks whose arrival
would fall after ``end`` are not sent (the calls still running then are "in progress").

Names, URLs, bucket names and the wording of messages are invented for the demo; only the
shapes follow Tavus's documentation.
"""

from __future__ import annotations

import heapq
import random
import string
import time
import zlib
from collections.abc import Iterator
from datetime import UTC, date, datetime
from itertools import accumulate
from math import log
from pathlib import Path

import orjson

from . import events as ev
from .demo_callers import Voice, voice
from .errors import TavusAnalyticsError
from .masking import mask_url
from .progress import progress as progress_bar
from .store import BatchResult, open_store

__all__ = ["DEFAULT_END", "generate", "post", "write"]

#: The default end of the demo period: fixed, so that demo data is the same every day.
DEFAULT_END = datetime(2026, 11, 1, tzinfo=UTC)

_S = 1_000_000  # microseconds per second
_MIN = 60 * _S
_HOUR = 60 * _MIN
_DAY = 24 * _HOUR
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()

# ---------------------------------------------------------------------------------------------
# Time formatting (integers of microseconds since the epoch, UTC)

_day_cache: dict[int, str] = {}


def _day(us: int) -> tuple[str, int]:
    d, rest = divmod(us, _DAY)
    s = _day_cache.get(d)
    if s is None:
        s = _day_cache[d] = date.fromordinal(_EPOCH_ORDINAL + d).isoformat()
    return s, rest


def _iso_us(us: int) -> str:
    """``2026-10-12T14:03:22.123456Z``: the sender's timestamp, as in Tavus's docs."""
    d, rest = _day(us)
    sec, frac = divmod(rest, _S)
    h, sec = divmod(sec, 3600)
    m, sec = divmod(sec, 60)
    return f"{d}T{h:02d}:{m:02d}:{sec:02d}.{frac:06d}Z"


def _iso_ms(us: int) -> str:
    """``2026-10-12T14:03:22.123Z``: the collector's ``received_at``."""
    d, rest = _day(us)
    sec, frac = divmod(rest, _S)
    h, sec = divmod(sec, 3600)
    m, sec = divmod(sec, 60)
    return f"{d}T{h:02d}:{m:02d}:{sec:02d}.{frac // 1000:03d}Z"


def _video_time(us: int) -> str:
    """``2024-08-28 15:27:40.824457``: the video object's times (UTC, no zone)."""
    d, rest = _day(us)
    sec, frac = divmod(rest, _S)
    h, sec = divmod(sec, 3600)
    m, sec = divmod(sec, 60)
    return f"{d} {h:02d}:{m:02d}:{sec:02d}.{frac:06d}"


def _to_us(dt: datetime) -> int:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    delta = dt - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86400 + delta.seconds) * _S + delta.microseconds


# ---------------------------------------------------------------------------------------------
# The text corpus

_GUIDELINES = """\
## How you speak
You are in a live, real-time video call. Everything you write is spoken aloud by your replica, so:
- Speak in short, natural sentences. One idea per sentence. Two to four sentences per turn is
  usually right; go longer only when the user explicitly asks for detail.
- Never use Markdown, bullet points, numbered lists, tables, code blocks, URLs or emoji in your
  answers: they cannot be pronounced. Spell out numbers, dates and abbreviations the way a person
  would say them ("twenty-nine dollars a month", "the fourth of March").
- Do not describe your own gestures or facial expressions, and never write stage directions.
- Ask one question at a time and wait for the answer. If the user interrupts you, stop and listen;
  do not repeat everything you said before the interruption.
- If you did not understand what the user said, say so briefly and ask them to repeat it. Speech
  recognition makes mistakes with names, numbers and email addresses: read them back to confirm.
- Keep a warm, professional tone. Use the user's name now and then, not in every sentence.

## Using what you see
You can see the user through their camera. Mention what you see only when it is relevant and
helpful (for example, if they hold up a document or share their screen). Never comment on the
user's appearance, body, clothing, surroundings or apparent age, gender or ethnicity unless the
user asks you to. If the camera is off, do not mention it.

## Safety and privacy
- Never ask for full payment card numbers, passwords, one-time codes or government ID numbers.
  If the user starts reading one out, interrupt politely and tell them you do not need it.
- Do not give medical, legal or financial advice beyond the scope described above; suggest a
  qualified professional instead.
- If the user is abusive, stay calm, set a boundary once, and end the call if it continues.
- If the user asks whether you are a human, say honestly that you are an AI video agent.

## Ending the call
When the user's questions are answered, summarise what was agreed in one or two sentences, tell
them what happens next (for example, a follow-up email), thank them and say goodbye. Do not keep
the conversation going artificially.
"""

_PERSONAS: list[dict] = [
    {
        "key": "support",
        "name": "Avery (Acme Cloud support)",
        "weight": 0.34,
        "max_call_duration": 1800,
        "participant_absent_timeout": 120,
        "recording": 0.35,
        "perception": 0.45,
        "memory": 0.0,
        "queries": [
            "Does the user appear frustrated or confused at any point?",
            "Is the user showing an error message on their screen?",
        ],
        "post_call": [("log_support_ticket", 0.45), ("send_call_summary_email", 0.15)],
        "prompt": """\
# Role
You are Avery, a senior customer support engineer at Acme Cloud, a hosting platform for small
and medium businesses. Acme Cloud sells managed virtual servers ("Droplets" are a competitor's
word: never use it), managed PostgreSQL and MySQL databases, object storage, a global CDN and a
domain registrar. Customers reach you from the help centre when they click "Talk to support".

# Goals, in order
1. Find out who the customer is: ask for the email address on the account and confirm it back.
   Use the lookup_account tool to load their plan, open tickets and recent incidents.
2. Understand the problem precisely: what they expected, what happened, since when, which
   resource (server name, region, database cluster) and any error message word for word.
3. Solve it during the call when you can: walk them through the fix one step at a time and
   check the result after each step.
4. When you cannot, create a ticket with create_support_ticket, tell the customer its number,
   the priority and when they can expect an answer (urgent: one hour; high: four hours;
   normal: one business day).

# What you know
- Plans: Starter (nine dollars a month, one server, one gigabyte of memory), Growth (forty-nine
  dollars, up to ten servers, daily backups), Business (from two hundred dollars, dedicated
  support, ninety-nine point nine five percent uptime commitment with service credits).
- Billing runs on the first of each month. Invoices are in Settings, Billing. Refunds for
  unused time are prorated and need a ticket to the billing team; you cannot issue them.
- Status of the platform: always check the incidents returned by lookup_account before
  troubleshooting; if an incident matches, say so plainly and give the status page address
  slowly ("status dot acme cloud dot com").
- Common fixes: a server unreachable after a firewall change (the Cloud Firewall must allow port
  twenty-two for SSH and four four three for HTTPS); a database at its connection limit (use the
  connection pooler on port six four three two); a certificate not renewing (the domain's DNS
  must point to Acme's load balancer); two-factor authentication lost (identity check by the
  security team, ticket required, never bypass it).

# Things you must not do
Never promise service credits, refunds or discounts. Never run destructive actions (deleting a
server, restoring a backup over live data) on the customer's behalf. Never share information
about another customer's account.
""",
        "greetings": [
            "Hi, I'm Avery from Acme Cloud support. What can I help you with today?",
            "Hello and thanks for reaching out to Acme Cloud. I'm Avery. What's going on?",
            "Hi there! Avery here from the support team. How can I help?",
        ],
        "user": [
            "Hi, my website has been down since this morning.",
            "I'm getting a five oh two bad gateway error on every page.",
            "The email on the account is maria dot keller at northwind dash labs dot com.",
            "I changed some firewall rules yesterday and now I can't SSH into the server.",
            "We're on the Growth plan, I think.",
            "Our database keeps saying too many connections.",
            "It started around nine, maybe a bit before.",
            "The server is called web-prod-2, it's in Frankfurt.",
            "I was charged twice this month and I'd like to understand why.",
            "Can you check if there's an outage in Amsterdam right now?",
            "Okay, I'm in the Cloud Firewall page now.",
            "I see a rule that only allows port four four three.",
            "Do I need to restart anything after that?",
            "Our certificate expired and browsers are showing a warning.",
            "The DNS is managed somewhere else, at our old registrar.",
            "That worked, the site is loading again.",
            "Hmm, it still says connection refused.",
            "Can you just open a ticket for the billing part?",
            "How long does the billing team usually take?",
            "Is there a way to get alerts before the disk fills up?",
            "I lost my phone, so I can't get the two-factor codes anymore.",
            "We're migrating from another provider and the import failed halfway.",
            "The error says: permission denied, public key.",
            "Sorry, can you repeat the port number?",
            "Okay.",
            "Yes, that's right.",
            "Perfect, thank you so much.",
            "No, I think that's everything.",
            "Wait, one more thing.",
        ],
        "assistant": [
            "Thanks, let me pull up your account.",
            "I can see the account: you're on the Growth plan with four servers.",
            "There's no platform incident in that region right now, so it's likely configuration.",
            "A five oh two usually means the load balancer can't reach your application.",
            "Let's check the firewall first, since you changed it recently.",
            "Could you open the Cloud Firewall page for web-prod-2 and read me the inbound rules?",
            "You'll need a rule allowing port twenty-two from your office address for SSH.",
            "No restart is needed; firewall changes apply within a few seconds.",
            "Your database is at its limit of one hundred connections.",
            "The connection pooler on port six four three two will fix that without an upgrade.",
            "I see two charges: one is the regular invoice, the other is a prorated upgrade.",
            "I can't issue refunds myself, but I'll open a ticket with the billing team.",
            "Billing tickets are normally answered within one business day.",
            "For the certificate, the domain has to point to our load balancer.",
            "Since the DNS is at your old registrar, you'll update the A record there.",
            "Great, I can see the health checks are passing again.",
            "Let's try one more thing before I escalate this.",
            "For security reasons, the two-factor reset has to go through an identity check.",
            "I've created ticket number four eight one two seven with high priority.",
            "You'll get an email confirmation in the next few minutes.",
            "You can set up disk alerts under Monitoring, Alert Policies.",
            "Is there anything else I can help you with today?",
            "Just to confirm, that's maria dot keller at northwind dash labs dot com?",
            "Sorry, I missed that; could you say the server name again?",
            "Take your time, I'm here.",
        ],
        "closers": [
            "Thanks for calling Acme Cloud support, have a great rest of your day!",
            "Glad we got that sorted. Take care!",
        ],
        "tools": [
            (
                "lookup_account",
                {"email": "maria.keller@northwind-labs.com"},
                {"plan": "growth", "servers": 4, "open_tickets": 1, "incidents": []},
            ),
            (
                "create_support_ticket",
                {"priority": "high", "subject": "Billing: duplicate charge"},
                {"ticket_id": "48127", "status": "open", "eta_hours": 4},
            ),
            (
                "check_region_status",
                {"region": "ams3"},
                {"region": "ams3", "status": "operational", "latency_ms": 12},
            ),
        ],
        "documents": [
            "Cloud Firewall rules are evaluated in order; inbound traffic not matched by any "
            "rule is dropped. Changes propagate to all attached servers within 10 seconds.",
            "The managed PostgreSQL connection pooler (PgBouncer, transaction mode) listens on "
            "port 6432 and multiplexes up to 5,000 client connections.",
            "Refunds: unused time on a downgraded plan is credited pro rata to the next invoice. "
            "Refunds to card require approval by Billing (ticket category: refund).",
        ],
    },
    {
        "key": "sales",
        "name": "Jordan (Nimbus CRM product specialist)",
        "weight": 0.26,
        "max_call_duration": 3600,
        "participant_absent_timeout": 300,
        "recording": 0.5,
        "perception": 0.55,
        "memory": 0.0,
        "queries": [
            "Does the user react noticeably when pricing is discussed?",
            "How many people are visible on the user's side of the call?",
        ],
        "post_call": [("create_crm_lead", 0.6), ("send_follow_up_email", 0.25)],
        "prompt": """\
# Role
You are Jordan, a product specialist at Nimbus CRM. Visitors of nimbuscrm.example book a
"live demo" from the pricing page; you run that demo. Your job is to understand the visitor's
team and needs, show how Nimbus fits, answer questions honestly, and, when there is a fit, book
a follow-up with an account executive.

# Discovery (first five minutes)
Ask, one question at a time: the company and the visitor's role; the size of the sales team;
what they use today (spreadsheets, HubSpot, Salesforce, Pipedrive, something home-made); the
two or three things that frustrate them most; who else decides; and their timeline.

# The product
- Pipeline boards with drag and drop, custom stages, rotting deals highlighted after a chosen
  number of idle days.
- Email and calendar sync for Google Workspace and Microsoft 365; every email logged on the deal.
- Built-in calling and call recording with automatic notes (available on Pro and Enterprise).
- Forecasting by rep, by team and by quarter; weighted by stage probability.
- Automations: assign leads round-robin, create follow-up tasks, send templated emails.
- Integrations: Slack, Zapier, Stripe, QuickBooks, Mailchimp; an open REST API and webhooks.
- Migration service: free imports from spreadsheets and the main CRMs on annual plans.
- Security: SOC 2 Type II, single sign-on with SAML on Enterprise, data hosted in the US or EU.

# Pricing (say it plainly when asked; never invent discounts)
Starter: fifteen dollars per user per month. Pro: forty-five dollars per user per month.
Enterprise: from ninety dollars per user per month, annual contract, minimum ten seats.
Annual billing saves two months. Non-profits get thirty percent off Pro on request.

# Closing
If the visitor is a fit, offer to book a thirty-minute call with an account executive and use
the book_meeting tool. If not (for example a one-person team who needs invoicing), say so and
point them to the free Starter trial. Always confirm their email address before booking.
""",
        "greetings": [
            "Hi, I'm Jordan from Nimbus CRM, thanks for booking a demo! Who do I have the "
            "pleasure of talking to?",
            "Hello! Jordan here. Before I show you anything, tell me a bit about your team?",
        ],
        "user": [
            "Hi Jordan, I'm Priya, I run sales operations at a logistics startup.",
            "We have about twelve reps, growing to twenty by next quarter.",
            "Right now it's a mess of spreadsheets and a very old Pipedrive account.",
            "The biggest problem is forecasting, nobody trusts the numbers.",
            "Do you integrate with Slack?",
            "How does the email sync work with Outlook?",
            "What does Pro cost per seat?",
            "Is there a discount if we pay annually?",
            "Can we keep our data in the EU? We have customers in Germany.",
            "How long does a migration usually take?",
            "Our CFO will want to see the security documentation.",
            "Can reps log calls from their phones?",
            "That looks nice, but can I customise the stages?",
            "We tried HubSpot last year and it was way too expensive for us.",
            "Who else would need to be on the next call, from your side?",
            "I'd need to talk to my manager before committing to anything.",
            "Can you show me the forecasting view again?",
            "What happens to deals that go quiet for a few weeks?",
            "Honestly, the price is a bit higher than I expected.",
            "Sure, next Tuesday afternoon works for me.",
            "It's priya at fastlane logistics dot io.",
            "Mm-hmm.",
            "Got it.",
            "That's really helpful, thanks.",
            "Sorry, my connection dropped for a second, what did you say?",
        ],
        "assistant": [
            "Nice to meet you, Priya! Tell me a bit about how your team sells today.",
            "Twelve reps with a plan to grow is exactly where Nimbus tends to shine.",
            "Forecasting is the number one reason teams switch to us, so let me show you that.",
            "Every deal has a stage probability, and the forecast weights deals by it.",
            "Yes, we have a native Slack integration: won deals and big moves post to a channel.",
            "With Microsoft 365, you connect once and every email with a contact is logged.",
            "Pro is forty-five dollars per user per month, and annual billing saves two months.",
            "We can host your data in our Frankfurt region, so it stays in the EU.",
            "A migration from Pipedrive usually takes three to five working days.",
            "We're SOC 2 Type Two certified, and I can send the report after the call.",
            "Reps can log calls from the mobile app, and Pro records and summarises them.",
            "Absolutely, stages are fully customisable per pipeline.",
            "Deals with no activity for the number of days you choose are highlighted in red.",
            "I understand; many teams compare us with HubSpot, and we're usually a third of the "
            "cost at your size.",
            "That makes sense. Would it help to book a call that includes your manager?",
            "I don't want to promise a discount I can't give, but annual billing helps.",
            "Let me book that with Sam, one of our account executives.",
            "Could you confirm your email address for the invite?",
            "Great, you'll get a calendar invitation in a minute.",
            "What would make this a clear yes for your team?",
            "Good question; let me pull up that screen.",
        ],
        "closers": [
            "Thanks so much for your time, Priya. Talk soon!",
            "Great talking with you, enjoy the rest of your day!",
        ],
        "tools": [
            (
                "book_meeting",
                {"email": "priya@fastlane-logistics.io", "slot": "2026-10-20T14:00:00Z"},
                {"booked": True, "host": "Sam Okafor", "meeting_id": "mtg_7Qk2"},
            ),
            (
                "get_pricing",
                {"plan": "pro", "seats": 12, "billing": "annual"},
                {"monthly_equivalent_usd": 450.0, "annual_total_usd": 5400.0},
            ),
        ],
        "documents": [
            "Nimbus CRM data residency: customers may choose US (Virginia) or EU (Frankfurt) "
            "hosting at sign-up. Moving an existing workspace between regions takes 2 days.",
            "Migration service: included with annual Pro and Enterprise plans. Sources: CSV, "
            "Excel, HubSpot, Salesforce, Pipedrive, Zoho. Typical duration 3-5 business days.",
        ],
    },
    {
        "key": "interview",
        "name": "Coach Maya (interview practice)",
        "weight": 0.16,
        "max_call_duration": 2700,
        "participant_absent_timeout": 300,
        "recording": 0.6,
        "perception": 0.9,
        "memory": 0.2,
        "queries": [
            "Is the user maintaining eye contact with the camera?",
            "Does the user's posture look confident and open?",
            "Is the user reading from notes or another screen?",
        ],
        "post_call": [("send_feedback_report", 0.5)],
        "prompt": """\
# Role
You are Maya, an interview coach. Users come to practise job interviews. You play the
interviewer for the role they name, then step out of the role to give feedback. You have
coached thousands of candidates, from new graduates to senior engineers and managers.

# Structure of a session
1. Warm-up: ask which role and company they are preparing for, the interview stage (screening,
   hiring manager, panel, final) and what worries them most.
2. Interview: ask four to six questions suited to the role: one "tell me about yourself", two
   behavioural questions (conflict, failure, leadership, prioritisation), one or two role-specific
   questions, and "do you have questions for us". Let the user answer fully; do not interrupt
   unless an answer goes past three minutes.
3. Feedback: for each answer, one thing that worked and one concrete improvement. Use the STAR
   structure (situation, task, action, result) to explain what was missing. Comment on delivery
   (pace, filler words, eye contact, posture) using what you observed, kindly and specifically.
4. Close: the two priorities to practise before the real interview.

# Style
Encouraging but honest. Never say an answer was perfect when it was not. Avoid generic advice
("be yourself"); give phrasing they can reuse. Keep your own turns short during the interview
part; the user should do most of the talking.

# Memory
If you remember earlier sessions with this user, refer to the progress they made on the points
you gave them last time.
""",
        "greetings": [
            "Hi, I'm Maya, your interview coach. What role are we practising for today?",
            "Welcome back! Ready for another practice round?",
        ],
        "user": [
            "I have a final-round interview for a product manager role next week.",
            "It's a backend engineering position at a fintech company.",
            "I always ramble when they ask me to tell them about myself.",
            "So, um, I started my career in consulting and then moved into product.",
            "In my last job I led the migration of our billing system to a new provider.",
            "There was a conflict with the design lead about the roadmap.",
            "We ended up shipping two weeks late, but the error rate dropped by forty percent.",
            "I guess my biggest weakness is that I take on too much myself.",
            "Can we try that question again? I want to do it better.",
            "How long should that answer be, roughly?",
            "What kind of questions should I ask them at the end?",
            "I was nervous, could you tell?",
            "Should I mention the salary expectations if they don't ask?",
            "I think I forgot the result part again.",
            "Okay, let me try: the situation was a failing launch two weeks before Black Friday.",
            "My team was four engineers and one designer.",
            "We measured success by checkout conversion.",
            "Yes, that makes sense.",
            "Right.",
            "Thank you, this was really useful!",
        ],
        "assistant": [
            "Great, let's start. Tell me about yourself.",
            "Thanks. Can you tell me about a time you disagreed with a colleague?",
            "What was the result, in numbers if you have them?",
            "Let me step out of the interviewer role for a moment.",
            "That answer had a strong situation, but the action part was vague.",
            "Try to say 'I' instead of 'we' when you describe what you did.",
            "Aim for about two minutes; you were closer to four.",
            "Your pace was good, and you kept eye contact well.",
            "You said 'um' quite often at the start; a short pause works better.",
            "End with the result and what you learned, then stop talking.",
            "That's much better: clear, specific, and it ended on the result.",
            "Here's a question they might ask: how do you prioritise a roadmap?",
            "A good question to ask them is what success looks like in the first ninety days.",
            "Only discuss salary when they bring it up, unless you're at the offer stage.",
            "Yes, a little at the beginning, but you settled in quickly.",
            "Last time we worked on your closing; that was noticeably stronger today.",
            "Let's do one more behavioural question.",
            "Take a moment to think before you answer.",
        ],
        "closers": [
            "Two things to practise: quantify your results, and keep the intro under two minutes. "
            "Good luck!",
            "You're well prepared. Go get it, and let me know how it goes!",
        ],
        "tools": [
            (
                "save_session_notes",
                {"strengths": ["eye contact", "structure"], "improve": ["quantify results"]},
                {"saved": True},
            ),
        ],
        "documents": [
            "STAR method: Situation (context, one or two sentences), Task (your responsibility), "
            "Action (what you did, the longest part), Result (measurable outcome, lesson).",
        ],
    },
    {
        "key": "tutor",
        "name": "Lucía (Spanish and French conversation tutor)",
        "weight": 0.15,
        "max_call_duration": 1200,
        "participant_absent_timeout": 180,
        "recording": 0.1,
        "perception": 0.2,
        "memory": 0.3,
        "queries": ["Is the user reading from notes or a textbook?"],
        "post_call": [("send_vocabulary_list", 0.3)],
        "prompt": """\
# Rol / Role
Eres Lucía, profesora de conversación de español y de francés. Tu es aussi professeure de
français. You are Lucía, a friendly conversation tutor for Spanish and French learners from A2 to
C1 level. Learners practise speaking; you keep the conversation going, correct gently, and
introduce useful vocabulary.

# How a lesson goes
- Start by asking which language they want to practise today and their level, unless you
  remember it from earlier lessons.
- Speak mostly in the target language, at a pace adapted to the level. Switch to English only to
  explain a grammar point or when the learner is clearly lost.
- Correct at most one or two mistakes per turn, by repeating the correct form naturally
  ("¡Ah, fuiste al mercado! ¿Qué compraste?") rather than lecturing.
- Introduce three to five new words or expressions per lesson; reuse them later in the lesson.
- Topics: daily routine, travel, food, work, hobbies, plans for the weekend, current events
  (avoid politics), culture of Spanish- and French-speaking countries.

# Levels
A2: short questions, present and past tenses, everyday vocabulary. B1: opinions, plans, stories
in the past (pretérito indefinido vs imperfecto; passé composé vs imparfait). B2 and above:
debate, subjunctive, idioms (« avoir le cafard », « estar en las nubes »), nuance.

# End of lesson
Summarise the new vocabulary, one grammar point to review, and encourage the learner.
¡Ánimo! Bon courage !
""",
        "greetings": [
            "¡Hola! Soy Lucía. ¿Qué idioma practicamos hoy, español o francés?",
            "Bonjour ! C'est Lucía. On commence ?",
            "¡Hola de nuevo! ¿Qué tal tu semana?",
        ],
        "user": [
            "Hola Lucía, quiero practicar español hoy.",
            "Mi semana fue muy ocupada, trabajé mucho.",
            "El fin de semana pasado fui a la playa con mis amigos.",
            "No sé cómo se dice 'to look forward to' en español.",
            "Je voudrais pratiquer mon français, s'il te plaît.",
            "Hier, je suis allé au marché et j'ai acheté des légumes.",
            "C'est difficile, le subjonctif. 😅",
            "¿Puedes hablar un poco más despacio, por favor?",
            "Creo que es... ¿cómo se dice... 'rainy'?",
            "Me gusta mucho la comida mexicana, sobre todo los tacos al pastor.",
            "En el futuro quiero vivir en Barcelona.",
            "Je ne comprends pas la différence entre « connaître » et « savoir ».",
            "Oh, I see, thanks.",
            "Sí, sí, entiendo.",
            "D'accord.",
            "¡Gracias, Lucía! Hasta la próxima. 👋",
            "Estaba muy cansado porque no dormí bien.",
            "Mi jefe es simpático pero muy exigente.",
        ],
        "assistant": [
            "¡Muy bien! Cuéntame, ¿qué hiciste el fin de semana?",
            "Ah, fuiste a la playa. ¿Hacía buen tiempo?",
            "Se dice 'tener ganas de': tengo ganas de verte.",
            "Très bien ! Et qu'est-ce que tu as cuisiné avec ces légumes ?",
            "Attention : on dit « je suis allé », avec être, très bien.",
            "Claro, hablo más despacio.",
            "Se dice 'lluvioso'. Hoy es un día lluvioso.",
            "¡Qué rico! Los tacos al pastor llevan piña, ¿lo sabías?",
            "« Connaître » s'utilise pour une personne ou un lieu, « savoir » pour un fait.",
            "Una pequeña corrección: 'estaba cansado', con estar, porque es temporal.",
            "Nueva palabra: 'exigente', que significa demanding en inglés.",
            "Perfecto, tu pronunciación está mejorando mucho.",
            "¿Y por qué Barcelona? ¿Qué te gusta de la ciudad?",
            "On révise : le subjonctif après « il faut que ». Il faut que tu viennes.",
            "La última vez hablamos de tu trabajo; ¿cómo va el proyecto nuevo?",
            "Exacto. ¿Puedes hacer una frase con 'tener ganas de'?",
        ],
        "closers": [
            "Hoy aprendiste 'tener ganas de', 'lluvioso' y 'exigente'. ¡Hasta pronto!",
            "Super leçon aujourd'hui. À la semaine prochaine !",
        ],
        "tools": [
            (
                "log_vocabulary",
                {"language": "es", "words": ["tener ganas de", "lluvioso", "exigente"]},
                {"saved": 3},
            ),
        ],
        "documents": [
            "Pretérito indefinido vs imperfecto: el indefinido narra acciones terminadas "
            "(ayer fui al cine); el imperfecto describe o expresa hábitos (de niño iba al cine).",
        ],
    },
    {
        "key": "concierge",
        "name": "Kenji (Sakura Hotels travel concierge)",
        "weight": 0.09,
        "max_call_duration": 900,
        "participant_absent_timeout": 120,
        "recording": 0.0,
        "perception": 0.3,
        "memory": 0.0,
        "queries": ["Does the user seem to be travelling or outdoors?"],
        "post_call": [("email_itinerary", 0.4)],
        "prompt": """\
# Role
You are Kenji, the virtual concierge of Sakura Hotels, a group of boutique hotels in Tokyo,
Kyoto and Osaka (東京・京都・大阪). Guests call you before and during their stay for
recommendations, reservations and practical help. You speak English and Japanese; answer in the
language the guest uses.

# What you can do
- Recommend restaurants, sights, day trips and shopping near the guest's hotel, adapted to their
  interests, budget and dietary needs (vegetarian, halal, allergies).
- Check availability and book restaurants with the book_restaurant tool; confirm date, time,
  number of people and name before booking.
- Explain transport: JR Pass, Suica and ICOCA cards, the Shinkansen between Tokyo and Kyoto
  (about two hours fifteen minutes by Nozomi), airport transfers from Narita, Haneda and Kansai.
- Answer questions about the hotel: check-in from three in the afternoon, check-out by eleven,
  luggage forwarding (takkyubin) to the next hotel, laundry, breakfast hours.

# Knowledge base
Use the hotel documents provided during the conversation (they start with "Information from
documents"). If the answer is not there, say you will ask the front desk and create a request.

# Style
Warm, polite, concise. Give one to three options, not ten. Say Japanese names clearly and offer
to send them by email with the email_itinerary action at the end of the call.
""",
        "greetings": [
            "Welcome to Sakura Hotels, I'm Kenji. How can I help with your trip?",
            "こんにちは、コンシェルジュのケンジです。ご用件をどうぞ。",
        ],
        "user": [
            "Hi Kenji, we're staying at your Kyoto hotel next week.",
            "Can you recommend a good ramen place near the hotel?",
            "We're vegetarian, is that going to be a problem?",
            "How do we get from Kansai airport to the hotel?",
            "Is the JR Pass worth it if we only go Tokyo to Kyoto and back?",
            "We'd love to see Fushimi Inari without the crowds.",
            "Can you book a table for four on Friday at seven?",
            "The name is Dubois, D-U-B-O-I-S.",
            "すみません、英語が少し苦手です。",
            "ありがとうございます!",
            "What time is breakfast served?",
            "Can we send our luggage to the Osaka hotel?",
            "Amazing, thank you! 🙏",
            "我们想去看樱花,哪里比较好?",
            "Is it going to rain on Saturday?",
            "Great.",
        ],
        "assistant": [
            "Of course! Near the Kyoto hotel there are two ramen places I love.",
            "For vegetarians, I'd suggest Shigetsu at Tenryu-ji, which serves shojin ryori.",
            "From Kansai airport, the Haruka express takes about seventy-five minutes to Kyoto.",
            "For a single round trip, separate tickets are usually cheaper than the JR Pass.",
            "Go to Fushimi Inari before eight in the morning; it's quiet and beautiful.",
            "Let me check availability for Friday at seven for four people.",
            "Your table is booked, under the name Dubois.",
            "大丈夫です。ゆっくり話しますね。",
            "Breakfast is served from seven to ten thirty in the garden lounge.",
            "Yes, we can forward your luggage; it arrives the next day for about two thousand yen "
            "per bag.",
            "哲学之道和円山公园都很适合赏樱。",
            "I'll email you the addresses and the names in Japanese after the call.",
            "Would you like a recommendation for dinner as well?",
        ],
        "closers": [
            "Enjoy Kyoto! I'll send everything by email. お気をつけて!",
            "Have a wonderful trip, and see you at the hotel!",
        ],
        "tools": [
            (
                "book_restaurant",
                {"restaurant": "Shigetsu", "date": "2026-10-16", "time": "19:00", "party": 4},
                {"confirmed": True, "reference": "SGT-2291"},
            ),
            (
                "check_weather",
                {"city": "Kyoto", "date": "2026-10-17"},
                {"forecast": "light rain", "high_c": 19, "low_c": 13},
            ),
        ],
        "documents": [
            "Sakura Hotel Kyoto: check-in 15:00, check-out 11:00. Breakfast 7:00-10:30, Garden "
            "Lounge (1F). Luggage forwarding via Yamato Transport, ¥2,000 per bag, next-day.",
            "館内のご案内:大浴場は15時から24時まで、6時から9時までご利用いただけます。",
        ],
    },
]

_FIRST_NAMES = [
    "Maria", "James", "Priya", "Chen", "Olivia", "Mateo", "Sofia", "Liam", "Aisha", "Noah",
    "José", "Zoë", "Søren", "Chloé", "Łukasz", "Nguyễn", "Yuki", "Fatima", "Björn", "Ana",
    "Emeka", "Hannah", "田中", "Ingrid", "Raj", "Camille", "Diego", "Mei", "Omar", "Elena",
]  # fmt: skip

_APPEARANCE = [
    "The user appears to be an adult with short dark hair, wearing glasses and a grey sweater.",
    "The user has shoulder-length hair tied back and is wearing a light blue collared shirt.",
    "The user is wearing over-ear headphones with a visible microphone boom.",
    "The user is seated in what looks like a home office, with bookshelves behind them.",
    "The lighting is dim and comes from one side, leaving part of the face in shadow.",
    "The user is in a bright room with a window behind them, causing some backlighting.",
    "The user is wearing a company-branded hoodie and has a lanyard around their neck.",
    "The background is blurred by the user's video software.",
    "The user appears to be in a car, parked, with daylight visible through the windows.",
    "The user is dressed formally, in a dark blazer over a white shirt.",
]
_BEHAVIOR = [
    "The user frequently looks down and to the right, as if reading notes or another screen.",
    "The user nods regularly while the replica is speaking.",
    "The user leans toward the camera when asking questions.",
    "The user types on a keyboard intermittently during the call.",
    "The user briefly leaves the frame around the middle of the call and returns shortly after.",
    "The user gestures with their hands while explaining their situation.",
    "The user picks up a phone and glances at it twice.",
    "The user holds a document up to the camera for a few seconds.",
    "The user remains mostly still, with their chin resting on one hand.",
    "Another person briefly appears in the background and speaks to the user.",
]
_EMOTION = [
    "The user seems calm and attentive throughout the conversation.",
    "The user appears frustrated at the start, frowning and sighing, then relaxes.",
    "The user smiles often and seems engaged and curious.",
    "The user looks tired, rubbing their eyes occasionally.",
    "The user appears nervous at first, with fidgeting that decreases over time.",
    "The user shows visible relief when the solution works.",
    "The user seems distracted, looking away from the screen for long stretches.",
    "The user's expression is mostly neutral, with occasional brief smiles.",
]
_SCREEN = [
    "No screen sharing was observed during the call.",
    "No screen sharing was observed.",
    "The user shared their screen showing a web browser with an error page.",
    "The user shared a dashboard with charts and a table of figures.",
    "The user shared a slide presentation for about two minutes.",
    "The user shared a code editor with a configuration file open.",
]
_QUERY_ANSWERS = [
    "Yes, clearly and consistently throughout most of the call.",
    "Mostly yes, with a few moments where this was less clear.",
    "Partly: this was observed at the beginning but not later in the call.",
    "No, this was not observed during the call.",
    "Not clearly: the lighting and camera angle made it hard to tell.",
    "Yes, especially in the second half of the conversation.",
    "Only briefly, for a few seconds near the end of the call.",
]

_REASONS = [
    # (reason, weight, probability of the " reached" suffix)
    ("participant_left_timeout", 0.50, 0.5),
    ("end_conversation_endpoint_hit", 0.12, 0.0),
    ("participant_absent_timeout", 0.12, 0.6),
    ("max_call_duration", 0.075, 0.8),
    ("bot_could_not_join_meeting_it_was_probably_ended", 0.03, 0.0),
    ("daily_room_has_been_deleted", 0.03, 0.0),
    ("exception_encountered_during_conversation_startup", 0.03, 0.0),
    ("internal_error", 0.025, 0.0),
]
_REASON_CUM = list(accumulate(w for _, w, _ in _REASONS))
_ERROR_STEPS = [1, 2, 3, 4, 5, 7, 9, 12]
_ERROR_STEP_CUM = list(accumulate([3, 4, 5, 3, 2, 2, 1, 1]))

# Hour-of-day weights in UTC (Europe's working day, then the Americas') and day-of-week weights
# (Monday first).
_HOURLY = [
    0.25, 0.15, 0.1, 0.08, 0.08, 0.12, 0.25, 0.5, 0.85, 1.0, 1.0, 0.95,
    0.85, 0.95, 1.1, 1.25, 1.3, 1.25, 1.15, 1.05, 0.95, 0.8, 0.6, 0.4,
]  # fmt: skip
_WEEKDAY = [1.0, 1.05, 1.05, 1.0, 0.85, 0.35, 0.25]

_TRAINING_ERRORS = [
    "Training video failed quality checks: the face is not visible for long enough.",
    "Training video failed quality checks: background noise is too loud.",
    "Consent statement could not be verified in the consent video.",
    "The training video is shorter than the minimum of one minute.",
    "Training failed: multiple faces detected in the training video.",
]
_VIDEO_ERRORS = [
    "An error occurred while generating the video: the script audio could not be synthesized.",
    "Video generation failed: the background video URL could not be downloaded.",
    "Video generation failed: the replica is not ready yet.",
    "An internal error occurred during rendering. Please try again.",
]
_VIDEO_SCRIPTS = [
    "Hi {name}, I recorded this quick video to thank you for signing up. I'd love to show you "
    "how teams like yours save hours every week. Book a time that suits you using the link "
    "below.",
    "Hey {name}! Congratulations on your new role. I noticed your team is growing fast, and I "
    "thought this short walkthrough might help you get started.",
    "Hello {name}, welcome aboard! In the next two minutes I'll walk you through your first "
    "week: your accounts, your onboarding buddy, and the three meetings you shouldn't miss.",
    "Hi {name}, your order has shipped. Here's what to expect next, and how to reach us if "
    "anything isn't right.",
    "Bonjour {name} ! Merci pour votre visite. Voici un récapitulatif de notre offre.",
]
_VIDEO_NAMES = [
    "Welcome - {name}",
    "Outreach Q4 - {name}",
    "Onboarding week 1 - {name}",
    "Order update - {name}",
    "Récapitulatif - {name}",
]

_ALNUM = string.ascii_letters + string.digits


# ---------------------------------------------------------------------------------------------
# The generator


# -- Tavus 2026: objectives, guardrails, canvas ------------------------------------------------
#: Objectives each persona's calls are judged on: (name, {variable: values}); a value may be a
#: list (products), and the evaluator sends "NOTFOUND" for what it could not extract.
_OBJECTIVES: dict[str, list[tuple[str, dict[str, list]]]] = {
    "support": [
        ("identify_issue", {"issue_category": ["billing", "login", "outage", "data export"],
                            "plan": ["Starter", "Team", "Enterprise"]}),
        ("resolve_issue", {"resolved": ["yes", "no", "escalated"],
                           "ticket_id": ["T-10231", "T-10874", "T-11502"]}),
    ],
    "sales": [
        ("qualify_lead", {"budget": ["under 10k", "10k-50k", "50k+"],
                          "timeline": ["this quarter", "next quarter", "this year"],
                          "products": [["CRM"], ["CRM", "Analytics"], ["Analytics", "Automation"]],
                          "decision_maker": ["yes", "no"]}),
        ("book_demo", {"demo_date": ["2026-11-03", "2026-11-10", "2026-11-17"],
                       "attendees": [1, 2, 3]}),
    ],
    "interview": [
        ("practice_round", {"role": ["product manager", "data analyst", "software engineer"],
                            "questions_answered": [3, 4, 5, 6]}),
    ],
    "tutor": [
        ("lesson_goal", {"language": ["Spanish", "French"],
                         "level": ["A2", "B1", "B2"]}),
    ],
    "concierge": [
        ("book_room", {"hotel": ["Sakura Shinjuku", "Sakura Kyoto", "Sakura Osaka"],
                       "nights": [1, 2, 3, 4], "guests": [1, 2]}),
    ],
}  # fmt: skip
#: Guardrails that may fire in a persona's calls (name, uuid).
_GUARDRAILS: dict[str, list[tuple[str, str]]] = {
    "support": [("no_legal_advice", "g7f3a91c02d4e"), ("no_refund_promises", "g1c84e2b5a9f0")],
    "sales": [("no_pricing_promises", "g5d20b7e3c1a8"), ("no_competitor_claims", "g9a6f1d4b8e27")],
    "interview": [("no_discrimination_topics", "g2e8c5a0f7b31")],
    "tutor": [("no_medical_advice", "g1234567890ab")],
    "concierge": [("no_payment_details", "g4b9e2f6a1c58")],
}
_CANVAS_COMPONENTS = ("canvas.question", "canvas.question", "canvas.calendar", "canvas.input")
#: The error code Tavus gives for each reason a recording could not be copied.
_COPY_ERRORS = {
    "AccessDenied": "DESTINATION_AUTH_FAILED",
    "NoSuchBucket": "DESTINATION_NOT_FOUND",
    "SlowDown": "DESTINATION_THROTTLED",
    "RequestTimeout": "COPY_TIMEOUT",
}


def _answer_delay(replica: str, newness: float) -> float:
    """A replica's typical answer delay in seconds: each replica its own (0.7 to 1.6 s), all
    of them getting faster over the period."""
    return (0.7 + (zlib.crc32(replica.encode()) % 10) / 10) * (1.2 - 0.35 * newness)


def _timed(
    trng: random.Random, roles: list[str], speech: list[float], base: float, budget: float
) -> list[float]:
    """Start times (seconds from the start) of turns of these ``speech`` durations: the replica
    answers after ``base`` seconds give or take, the caller after a breath, now and then one
    side starts before the other has finished; squeezed into ``budget`` seconds if needed."""
    gaps = [0.3 + trng.random()]
    for prev, role in zip(roles, roles[1:], strict=False):
        if role != prev and trng.random() < 0.03:
            gaps.append(-trng.uniform(0.2, 0.9))  # an interruption
        elif role == "assistant" and prev == "user":
            gaps.append(trng.lognormvariate(0.0, 0.35) * base)
        elif role == "user" and prev == "assistant":
            gaps.append(trng.uniform(0.3, 2.5))
        else:
            gaps.append(trng.uniform(0.2, 1.0))
    total = sum(speech) + sum(max(g, 0.0) for g in gaps)
    scale = min(1.0, budget / total) if total > 0 else 1.0
    starts, t = [], 0.0
    for gap, d in zip(gaps, speech, strict=True):
        t = max(t + gap * scale, starts[-1] if starts else 0.0)
        starts.append(t)
        t += d * scale
    return starts


def _side_events(
    w: _World,
    trng: random.Random,
    cid: str,
    persona: dict,
    replica: str,
    start: int,
    duration: float,
    completed: bool,
    webhook: str,
) -> list[tuple[int, bytes]]:
    """The 2026 callbacks of one call, with their arrival times: objective completions (to the
    objective's own URL, both shapes, no timestamp), guardrail triggers (the same body each
    time) and canvas interactions."""
    out: list[tuple[int, bytes]] = []
    key = persona["key"]

    def at(fraction: float) -> int:
        return start + int(duration * fraction * _S) + trng.randint(50_000, 900_000)

    # Objectives: replicas differ in how often their calls reach them.
    reach = 0.45 + (zlib.crc32(replica.encode()) % 7) / 20
    if completed and duration > 30:
        for n, (name, variables) in enumerate(_OBJECTIVES.get(key, [])):
            if trng.random() > reach * (1.0 if n == 0 else 0.7):
                break  # an objective not reached: the ones after it are not either
            values = {
                v: ev.NOTFOUND if trng.random() < 0.12 else trng.choice(pool)
                for v, pool in variables.items()
            }
            flat = trng.random() < 0.6
            body = (
                {"conversation_id": cid, "objective_name": name, "output_variables": values}
                if flat
                else {
                    "conversation_id": cid,
                    "event_type": ev.OBJECTIVE_COMPLETED,
                    "message_type": "conversation",
                    "properties": {"objective_name": name, "output_variables": values},
                }
            )
            out.append((at(trng.uniform(0.3, 0.95)), orjson.dumps(body)))
    # Guardrails: a few calls trigger one, some of them several times (identical bodies).
    if duration > 20 and trng.random() < 0.06:
        name, uuid = trng.choice(_GUARDRAILS[key])
        body = orjson.dumps(
            {"conversation_id": cid, "properties": {"guardrail": name, "guardrail_uuid": uuid}}
        )
        times = trng.choices((1, 2, 3), weights=(0.6, 0.2, 0.2))[0]
        for _ in range(times):
            out.append((at(trng.uniform(0.1, 0.95)), body))
    # Canvas: on-screen cards the caller answers, skips or dismisses.
    if completed and key in ("support", "sales", "concierge") and trng.random() < 0.3:
        call = "call_" + "".join(trng.choices(_ALNUM, k=6))
        for _ in range(trng.randint(1, 3)):
            component = trng.choice(_CANVAS_COMPONENTS)
            kind = trng.choices(("submit", "skip", "dismiss"), weights=(0.7, 0.2, 0.1))[0]
            t = at(trng.uniform(0.2, 0.9))
            value: dict = {"skipped": kind == "skip"}
            if component == "canvas.question" and kind == "submit":
                value["selected_option_ids"] = [f"opt_{trng.randint(1, 4)}"]
            elif component == "canvas.calendar" and kind == "submit":
                value["slot"] = _iso_ms(t + trng.randint(1, 14) * _DAY)
            elif component == "canvas.input" and kind == "submit":
                value["text"] = trng.choice(["ACME-4471", "jordan@example.com", "Room 512"])
            props = {
                "conversation_id": cid,
                "interaction_id": f"ci_{call}_{kind}_{trng.getrandbits(32):08x}",
                "tool_call_id": call,
                "component": component,
                "component_version": "v1",
                "type": kind,
                "value": value,
                "metadata": {"client": trng.choice(["kiosk-web", "web", "ios"])},
                "created_at": _iso_us(t)[:-1],
            }
            envelope = {
                "message_type": "canvas",
                "event_type": ev.CANVAS_INTERACTION,
                "conversation_id": cid,
                "timestamp": _iso_ms(t),
                "properties": props,
            }
            out.append((t + trng.randint(5_000, 40_000), orjson.dumps(envelope)))
    return out


class _World:
    """Everything fixed for one generation: replicas, personas, URLs, time weights."""

    def __init__(self, rng: random.Random, n: int, end_us: int, days: int) -> None:
        self.rng = rng
        self.end_us = end_us
        self.days = days
        self.start_us = end_us - days * _DAY
        span = end_us - self.start_us
        # Replicas, some more popular than others.
        self.replicas = [f"r{rng.getrandbits(36):09x}" for _ in range(rng.randint(4, 6))]
        popularity = [1.0 / (i + 1) ** 0.9 for i in range(len(self.replicas))]
        # Personas: each uses two or three of the replicas, weighted by popularity.
        self.personas = []
        for spec in _PERSONAS:
            used = rng.sample(range(len(self.replicas)), k=min(len(self.replicas), 3))
            used = used[: rng.randint(2, 3)]
            p = dict(spec)
            p["replicas"] = [self.replicas[i] for i in used]
            p["replica_cum"] = list(accumulate(popularity[i] for i in used))
            p["tool_ids"] = {name: f"t{rng.getrandbits(40):010x}" for name, _ in spec["post_call"]}
            p["headers"] = [f"**{q}**" for q in spec["queries"]]
            self.personas.append(p)
        self.persona_cum = list(accumulate(p["weight"] for p in self.personas))
        # The callback URL changes when the ngrok tunnel is restarted.
        cuts = sorted(rng.random() for _ in range(2))
        self.webhooks = [
            (self.start_us + int(c * span), f"https://{rng.getrandbits(32):08x}.ngrok-free.app")
            for c in [0.0, *cuts]
        ]
        self.webhooks = [(t, f"{u}/webhook") for t, u in self.webhooks]
        self.recordings = 0
        self.side: list[tuple[int, bytes]] = []  # the 2026 callbacks of the last conversation
        self.bucket = rng.choice(["acme-tavus-recordings", "tavus-demo-recordings"])
        # Hour bins over the period with weekday, daytime and growth weights.
        first_hour = self.start_us // _HOUR
        weights = []
        for i in range(days * 24):
            hour = first_hour + i
            weekday = (hour // 24 + 3) % 7  # 1970-01-01 was a Thursday
            growth = 1.0 + 0.5 * i / (days * 24)
            weights.append(_HOURLY[hour % 24] * _WEEKDAY[weekday] * growth)
        self.hour_cum = list(accumulate(weights))
        self.first_hour_us = first_hour * _HOUR

    def sample_times(self, k: int) -> list[int]:
        rng = self.rng
        bins = rng.choices(range(len(self.hour_cum)), cum_weights=self.hour_cum, k=k)
        return [
            max(self.start_us, min(self.end_us - 1, self.first_hour_us + b * _HOUR))
            + int(rng.random() * _HOUR)
            for b in bins
        ]

    def webhook_at(self, us: int) -> str:
        url = self.webhooks[0][1]
        for t, u in self.webhooks:
            if us >= t:
                url = u
        return url

    def newness(self, us: int) -> float:
        """0 at the start of the period, 1 at the end: newer payload shapes become common."""
        return (us - self.start_us) / (self.end_us - self.start_us)


def _uuid(rng: random.Random) -> str:
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


def _envelope(cid: str, event_type: str, ts: int, webhook: str, props: dict) -> bytes:
    return orjson.dumps(
        {
            "properties": props,
            "conversation_id": cid,
            "webhook_url": webhook,
            "event_type": event_type,
            "message_type": "system" if event_type.startswith("system.") else "application",
            "timestamp": _iso_us(ts),
        }
    )


def _duration_s(rng: random.Random, base: str, persona: dict) -> float:
    """Seconds between the join and the shutdown, realistic for the reason."""
    max_call = persona["max_call_duration"]
    if base == "max_call_duration":
        return max_call + rng.uniform(0.2, 2.5)
    if base in ("participant_left_timeout", "end_conversation_endpoint_hit"):
        # A few seconds to half an hour, median about four minutes, long tail.
        d = rng.lognormvariate(log(240), 1.0)
        return max(3.0 + rng.random() * 5, min(d, max_call - 5 - rng.random() * 60))
    if base == "participant_absent_timeout":
        if rng.random() < 0.35:
            return rng.uniform(0.0, 2.5)  # shut down at once
        return persona["participant_absent_timeout"] + rng.uniform(0.1, 3.0)
    if base == "bot_could_not_join_meeting_it_was_probably_ended":
        return rng.uniform(0.0, 20.0)
    if base == "exception_encountered_during_conversation_startup":
        return rng.uniform(0.0, 8.0)
    if base == "daily_room_has_been_deleted":
        return min(rng.lognormvariate(log(120), 1.2), max_call - 10)
    return min(rng.lognormvariate(log(90), 1.1), max_call - 10)  # internal error


def _content(rng: random.Random, pool: list[str], long: bool) -> str:
    r = rng.random()
    if long:
        k = 1 if r < 0.2 else 2 if r < 0.5 else 3 if r < 0.8 else 4 if r < 0.93 else 6
    else:
        k = 1 if r < 0.55 else 2 if r < 0.85 else 3
    return " ".join(dict.fromkeys(rng.choices(pool, k=k)))  # a sentence is said once per turn


def _transcript(
    rng: random.Random,
    persona: dict,
    prompt: str,
    start_us: int,
    duration: float,
    no_show: bool,
    new_shape: bool,
    voice: Voice,
    *,
    trng: random.Random | None = None,
    answer_delay: float = 1.1,
) -> list[dict]:
    """A transcript: the system prompt, then turns spread over the call.

    The shape (turns, roles, sentences per turn) is drawn from ``rng``; what the sentences say
    comes from the call's ``voice`` (:mod:`tavus_analytics.demo_callers`), whose pools have the
    sizes the draws expect, so that the text never changes the random stream. Newer payloads
    time each turn (``trng`` draws the timing: the replica answers after about
    ``answer_delay`` seconds).
    """
    msgs: list[dict] = [{"role": "system", "content": prompt}]
    if no_show:
        turns = [("assistant", rng.choice(voice.greetings))]
    else:
        n = max(2, min(60, round(duration / rng.uniform(9.0, 22.0))))
        turns = [("assistant", rng.choice(voice.greetings))]
        role = "user"
        while len(turns) < n - 2:
            if role == "user":
                turns.append(("user", _content(rng, voice.user_pool(len(turns), n), False)))
                # Loosely alternating: now and then the user speaks twice in a row.
                role = "user" if rng.random() < 0.06 else "assistant"
            else:
                turns.append(("assistant", _content(rng, voice.assistant_pool, True)))
                role = "user"
        if turns[-1][0] == "assistant":
            turns.append(("user", rng.choice(voice.last_words)))
        if n > 2:
            turns.append(("assistant", rng.choice(voice.closers)))
    if not new_shape:
        msgs.extend({"role": r, "content": c} for r, c in turns)
        return msgs
    # Newer payloads: per-message timing, inference ids, tool calls and document retrievals.
    unix_float = rng.random() < 0.5
    tool_at = -1
    if persona["tools"] and not no_show and len(turns) > 4 and rng.random() < 0.45:
        tool_at = rng.randrange(2, len(turns) - 1)
    doc_at = -1
    if persona["documents"] and not no_show and len(turns) > 3 and rng.random() < 0.3:
        doc_at = rng.randrange(1, len(turns) - 1)
    # Speech at about 15 characters a second, squeezed if the call was shorter; the rest of the
    # call is silence between turns. Everything ends before the shutdown.
    spoken = [len(c) / rng.uniform(13.0, 17.0) + 0.3 for _, c in turns]
    total = sum(spoken)
    budget = max(duration - 1.0 - (1.5 if tool_at >= 0 else 0.0), 0.5)
    scale = min(1.0, budget / total)
    [rng.random() for _ in turns[1:]]  # the draws older versions spent on pauses
    starts = _timed(
        trng or random.Random(0), [r for r, _ in turns], [d * scale for d in spoken], answer_delay,
        budget,
    )  # fmt: skip
    offset = 0.0  # the time tool calls took, which moves every later turn
    for i, ((role, content), speech) in enumerate(zip(turns, spoken, strict=True)):
        t = starts[i] + offset
        ts = start_us + int(t * _S)
        if i == doc_at:
            msgs.append(
                {
                    "role": "system",
                    "content": "Information from documents:\n\n" + rng.choice(persona["documents"]),
                }
            )
        if i == tool_at and role == "assistant":
            name, args, result = rng.choice(persona["tools"])
            call_id = "call_" + "".join(rng.choices(_ALNUM, k=24))
            msgs.append(
                {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [
                        {
                            "id": call_id,
                            "type": "function",
                            "function": {"name": name, "arguments": orjson.dumps(args).decode()},
                        }
                    ],
                    "timestamp": ts / _S if unix_float else _iso_us(ts),
                    "inference_id": _uuid(rng),
                }
            )
            msgs.append(
                {
                    "role": "tool",
                    "tool_call_id": call_id,
                    "content": orjson.dumps(result).decode(),
                }
            )
            pause = 0.4 + rng.random()
            t += pause
            offset += pause
            ts = start_us + int(t * _S)
        d = round(speech * scale, 2)
        msg = {
            "role": role,
            "content": content,
            "timestamp": ts / _S if unix_float else _iso_us(ts),
            "seconds_from_start": round(t, 2),
            "duration": d,
        }
        if role == "assistant":
            msg["inference_id"] = _uuid(rng)
        msgs.append(msg)
    return msgs


def _perception(rng: random.Random, persona: dict, seconds: int) -> str:
    def bullets(pool: list[str], k: int) -> str:
        return "\n".join("- " + s for s in rng.sample(pool, k))

    parts = [
        "Here's a summary of the visual observations taken during the video call over the "
        f"last {seconds} seconds:",
        "**User Appearance**\n" + bullets(_APPEARANCE, rng.randint(1, 3)),
        "**User Behavior & Actions**\n" + bullets(_BEHAVIOR, rng.randint(1, 3)),
        "**Emotional States & Patterns**\n" + bullets(_EMOTION, rng.randint(1, 2)),
        "**Notable Screen Activities**\n" + bullets(_SCREEN, 1),
    ]
    for header in persona["headers"]:
        parts.append(header + "\n" + bullets(_QUERY_ANSWERS, 1))
    return "\n\n".join(parts)


def _post_call(rng: random.Random, persona: dict, tool: str, cid: str, name: str) -> dict:
    summary = (
        f"{name} spoke with {persona['name'].split(' (')[0]} about "
        + rng.choice(persona["user"]).rstrip(".?!").lower()
    )
    body = {"conversation_id": cid, "contact_name": name, "summary": summary}
    ok = rng.random() < 0.9
    if ok:
        response = {"status_code": rng.choice([200, 200, 200, 201, 202]), "body": {"ok": True}}
    else:
        code = rng.choice([400, 401, 404, 500, 502, 504])
        response = {"status_code": code, "body": f"upstream answered {code}"}
    return {
        "tool_id": persona["tool_ids"][tool],
        "tool_name": tool,
        "status": "success" if ok else "error",
        "request": {
            "method": "POST",
            "url": f"https://hooks.example.com/{persona['key']}/{tool}",
            "headers": {"Content-Type": "application/json"},
            # Seen both ways in the wild: an object, or the JSON text of one.
            "body": body if rng.random() < 0.6 else orjson.dumps(body).decode(),
        },
        "response": response,
    }


def _conversation(w: _World, start: int, in_progress: bool) -> list[tuple[int, bytes]]:
    """The callbacks of one conversation: (sender time in microseconds, body)."""
    rng = w.rng
    cid = f"c{rng.getrandbits(48):012x}"
    persona = w.personas[rng.choices(range(len(w.personas)), cum_weights=w.persona_cum)[0]]
    replica = persona["replicas"][
        rng.choices(range(len(persona["replicas"])), cum_weights=persona["replica_cum"])[0]
    ]
    webhook = w.webhook_at(start)
    newness = w.newness(start)
    out: list[tuple[int, bytes]] = []
    w.side = []
    # The 2026 callbacks and turn timing draw from a stream of their own, so that the rest of
    # the demo stays byte for byte what it was.
    trng = random.Random(f"2026:{cid}")

    base = _REASONS[rng.choices(range(len(_REASONS)), cum_weights=_REASON_CUM)[0]]
    reason, _, reached = base
    if in_progress:
        joined = True
    elif reason == "bot_could_not_join_meeting_it_was_probably_ended":
        joined = rng.random() < 0.4
    elif reason == "exception_encountered_during_conversation_startup":
        joined = rng.random() < 0.3
    else:
        joined = True
    # Now and then the join callback never arrives (there is no documented retry).
    lost_join = not in_progress and rng.random() < 0.005
    if joined and not lost_join:
        out.append(
            (
                start,
                _envelope(cid, "system.replica_joined", start, webhook, {"replica_id": replica}),
            )
        )
        if rng.random() < 0.2 + 0.5 * newness:
            out.append(
                (start, _envelope(cid, "system.pal_joined", start, webhook, {"face_id": replica}))
            )
    if in_progress:
        return out

    duration = _duration_s(rng, reason, persona)
    if reason == "internal_error":
        step = _ERROR_STEPS[rng.choices(range(len(_ERROR_STEPS)), cum_weights=_ERROR_STEP_CUM)[0]]
        reason_text = f"internal error occurred at step {step}"
    else:
        reason_text = reason + " reached" if rng.random() < reached else reason
    end = start + int(duration * _S)
    out.append(
        (
            end,
            _envelope(
                cid,
                "system.shutdown",
                end,
                webhook,
                {"replica_id": replica, "shutdown_reason": reason_text},
            ),
        )
    )
    completed = reason in (
        "participant_left_timeout",
        "end_conversation_endpoint_hit",
        "max_call_duration",
    )
    no_show = reason == "participant_absent_timeout"
    failed_early = not joined or reason in (
        "bot_could_not_join_meeting_it_was_probably_ended",
        "exception_encountered_during_conversation_startup",
    )
    if completed:
        has_transcript = rng.random() < 0.93
    elif no_show:
        has_transcript = duration > 5 and rng.random() < 0.8
    elif failed_early:
        has_transcript = False
    else:
        has_transcript = duration > 10 and rng.random() < 0.5
    name = rng.choice(_FIRST_NAMES)
    if has_transcript:
        t = end + rng.randint(600, 2500)
        local = datetime.fromtimestamp(start / _S, UTC)
        prompt = (
            persona["prompt"]
            + "\n"
            + _GUIDELINES
            + f"\n## Conversation context\nYou are speaking with {name}. Today is "
            + f"{local:%A, %d %B %Y}; the call started at {local:%H:%M} UTC."
        )
        new_shape = rng.random() < 0.15 + 0.6 * newness
        caller = voice(
            cid,
            persona,
            newness=newness,
            day_of_month=local.day,
            struggling=persona["key"] == "support" and replica == persona["replicas"][-1],
        )
        transcript = _transcript(
            rng,
            persona,
            prompt,
            start,
            duration,
            no_show,
            new_shape,
            caller,
            trng=trng,
            answer_delay=_answer_delay(replica, newness),
        )
        out.append(
            (
                t,
                _envelope(
                    cid,
                    "application.transcription_ready",
                    t,
                    webhook,
                    {"replica_id": replica, "transcript": transcript},
                ),
            )
        )
    if has_transcript and not no_show and duration > 20 and rng.random() < persona["recording"]:
        t = end + rng.randint(20 * _S, 150 * _S)
        w.recordings += 1
        if w.recordings % 20 == 3:  # one recording in twenty fails to copy
            why = rng.choice(["AccessDenied", "NoSuchBucket", "SlowDown", "RequestTimeout"])
            props = {
                "recording_id": f"rec_{cid[1:9]}",
                "s3_key": f"recordings/{cid}/{start // _S}.mp4",
                "duration": int(duration),
                "storage_provider": "s3",
                "error_code": _COPY_ERRORS[why],
                "error_message": f"Failed to copy recording to bucket {w.bucket}: {why}",
            }
            out.append((t, _envelope(cid, "application.recording_copy_failed", t, webhook, props)))
        else:
            key = f"recordings/{cid}/{start // _S}.mp4"
            if rng.random() < 0.2 + 0.7 * newness:
                props = {"storage_provider": "s3", "storage_uri": f"s3://{w.bucket}/{key}"}
            else:
                props = {"bucket_name": w.bucket, "s3_key": key, "duration": int(duration)}
            out.append((t, _envelope(cid, "application.recording_ready", t, webhook, props)))
    if joined and not failed_early and rng.random() < persona["perception"]:
        t = end + rng.randint(165 * _S, 200 * _S)
        if duration < 15 or rng.random() < 0.15:
            out.append(
                (
                    t,
                    _envelope(
                        cid,
                        "application.perception_unavailable",
                        t,
                        webhook,
                        {"reason": "no_vision_history"},
                    ),
                )
            )
        else:
            analysis = _perception(rng, persona, int(duration))
            out.append(
                (
                    t,
                    _envelope(
                        cid, "application.perception_analysis", t, webhook, {"analysis": analysis}
                    ),
                )
            )
    if completed:
        for tool, p in persona["post_call"]:
            if rng.random() < p:
                t = end + rng.randint(120 * _S, 180 * _S)
                props = _post_call(rng, persona, tool, cid, name)
                out.append(
                    (t, _envelope(cid, "application.post_call_action_executed", t, webhook, props))
                )
        if rng.random() < persona["memory"]:
            t = end + rng.randint(30 * _S, 300 * _S)
            out.append((t, _envelope(cid, "application.memory_consolidation", t, webhook, {})))
    if joined and not failed_early:
        w.side = _side_events(w, trng, cid, persona, replica, start, duration, completed, webhook)
    return out


def _video(w: _World, start: int, fate: str | None) -> list[tuple[int, bytes]]:
    """The status callbacks of one video; ``fate`` forces ``error`` or ``deleted``."""
    rng = w.rng
    vid = f"{rng.getrandbits(40):010x}"
    name = rng.choice(_FIRST_NAMES)
    i = rng.randrange(len(_VIDEO_SCRIPTS))
    video = {
        "video_id": vid,
        "video_name": _VIDEO_NAMES[i].format(name=name),
        "replica_id": rng.choice(w.replicas),
        "status": "queued",
        "status_details": "Your request has been queued.",
        "created_at": _video_time(start),
        "updated_at": _video_time(start),
        "generation_progress": "0/100",
        "download_url": None,
        "hosted_url": None,
        "stream_url": None,
        "error_details": None,
        "data": {"script": _VIDEO_SCRIPTS[i].format(name=name)},
    }
    out: list[tuple[int, bytes]] = []

    def send(t: int, **changes) -> None:
        video.update(changes, updated_at=_video_time(t))
        out.append((t, orjson.dumps(video)))

    if rng.random() < 0.7:
        send(start)
    t = start + rng.randint(3 * _S, 40 * _S)
    for _ in range(rng.randint(1, 2)):
        progress = rng.randint(1, 85)
        send(
            t,
            status="generating",
            status_details="Your video is being generated.",
            generation_progress=f"{progress}/100",
        )
        t += rng.randint(20 * _S, 120 * _S)
    if fate == "error" or (fate is None and rng.random() < 0.08):
        send(
            t,
            status="error",
            status_details="Video generation failed.",
            generation_progress="0/100",
            error_details=rng.choice(_VIDEO_ERRORS),
        )
        return out
    t += rng.randint(30 * _S, 300 * _S)
    send(
        t,
        status="ready",
        status_details="Your video is ready.",
        generation_progress="100/100",
        download_url=f"https://cdn.replica.tavus.io/videos/{vid}.mp4",
        hosted_url=f"https://videos.tavus.io/video/{vid}",
        stream_url=f"https://stream.mux.com/{rng.getrandbits(64):016x}.m3u8",
    )
    if fate == "deleted" or (fate is None and rng.random() < 0.06):
        t += rng.randint(_HOUR, 10 * _DAY)
        send(
            t,
            status="deleted",
            status_details="This video has been deleted.",
            download_url=None,
            hosted_url=None,
            stream_url=None,
        )
    return out


def _training(rng: random.Random, replica: str, t: int, ok: bool) -> list[tuple[int, bytes]]:
    if ok:
        return [(t, orjson.dumps({"replica_id": replica, "status": "ready"}))]
    body = {"replica_id": replica, "status": "error", "error_message": rng.choice(_TRAINING_ERRORS)}
    return [(t, orjson.dumps(body))]


def _delay_us(rng: random.Random) -> int:
    """Network and queueing delay between the sender's timestamp and the arrival."""
    d = rng.lognormvariate(log(0.06), 0.6)
    if rng.random() < 0.02:
        d += rng.uniform(0.3, 3.0)
    return int(d * _S)


def generate(
    conversations: int = 500,
    *,
    seed: int = 0,
    end: datetime | None = None,
    days: int = 42,
) -> Iterator[tuple[bytes, str]]:
    """Yield realistic synthetic Tavus callbacks in arrival order.

    Parameters
    ----------
    conversations : int
        How many conversations to make. About 4 callbacks come per conversation, plus about one
        video per ten conversations (3 or 4 callbacks each) and a few replica trainings.
    seed : int
        Seed of the ``random.Random`` everything is drawn from: the same arguments always give
        byte-identical output.
    end : datetime, optional
        End of the period (UTC; a naive datetime is taken as UTC). Default :data:`DEFAULT_END`,
        a fixed date, so that the output does not depend on the day it is made.
    days : int
        Length of the period before ``end`` over which conversations are spread.

    Yields
    ------
    tuple of (bytes, str)
        The raw JSON body (compact, UTF-8) and its ``received_at``: the sender's timestamp plus a
        random network delay, as ISO 8601 UTC with milliseconds and ``Z``. In ``received_at``
        order, which is not always the senders' timestamp order.
    """
    if conversations < 0:
        raise ValueError("conversations must be 0 or more")
    if days < 1:
        raise ValueError("days must be at least 1")
    rng = random.Random(seed)
    end_us = _to_us(end or DEFAULT_END)
    w = _World(rng, conversations, end_us, days)

    # Sources: (start, order, kind, detail). Each source's callbacks are all at or after its start.
    starts = w.sample_times(conversations)
    sources: list[tuple[int, int, str, object]] = []
    for i, s in enumerate(starts):
        if rng.random() < 0.02:  # still in progress at the end: joined in the last 40 minutes
            sources.append((end_us - rng.randint(5 * _S, 40 * _MIN), i, "c", True))
        else:
            sources.append((s, i, "c", False))
    n = len(sources)
    # About one video per ten conversations; the first two always end in error and deletion,
    # so that even a small demo shows every status.
    for j, s in enumerate(w.sample_times(round(conversations / 10))):
        sources.append((s, n + j, "v", {0: "error", 1: "deleted"}.get(j)))
    n = len(sources)
    for j, r in enumerate(w.replicas):
        sources.append((w.start_us - rng.randint(_HOUR, 10 * _DAY), n + j, "t", (r, True)))
    n = len(sources)
    extra = max(2, conversations // 1000)
    for j, s in enumerate(w.sample_times(extra)):
        r = f"r{rng.getrandbits(36):09x}"
        sources.append((s, n + j, "t", (r, j % 3 == 1)))
    sources.sort()

    heap: list[tuple[int, int, bytes]] = []
    seq = 0
    for start, _, kind, detail in sources:
        while heap and heap[0][0] < start:
            recv, _, body = heapq.heappop(heap)
            yield body, _iso_ms(recv)
        if kind == "c":
            events = _conversation(w, start, bool(detail))
        elif kind == "v":
            events = _video(w, start, detail)
        else:
            events = _training(rng, detail[0], start, detail[1])
        delays = [_delay_us(rng) for _ in events]
        # Very short calls: now and then the shutdown overtakes the join by a few hundred ms.
        if (
            kind == "c"
            and len(events) >= 2
            and events[-1][0] - events[0][0] < 3 * _S
            and rng.random() < 0.5
        ):
            last = len(events) - 1
            delays[0] = (
                events[last][0] - events[0][0] + delays[last] + rng.randint(100_000, 600_000)
            )
        for recv, body in w.side if kind == "c" else ():
            if recv <= end_us:  # the 2026 callbacks, with their own arrival times
                heapq.heappush(heap, (recv, seq, body))
                seq += 1
        for (t, body), d in zip(events, delays, strict=True):
            recv = t + d
            if recv > end_us:
                continue
            heapq.heappush(heap, (recv, seq, body))
            seq += 1
            if rng.random() < 0.01:  # delivered twice, byte for byte
                again = recv + rng.randint(2 * _S, 90 * _S)
                if again <= end_us:
                    heapq.heappush(heap, (again, seq, body))
                    seq += 1
    while heap:
        recv, _, body = heapq.heappop(heap)
        yield body, _iso_ms(recv)


# ---------------------------------------------------------------------------------------------
# Writing and posting


def write(
    db: str | Path,
    conversations: int = 500,
    *,
    seed: int = 0,
    progress: bool = False,
    batch_size: int = 50_000,
) -> BatchResult:
    """Store demo callbacks straight into a database.

    The bodies go through :meth:`tavus_analytics.store.Store.insert_batch`, the collector's own
    classification and dedupe path, ``batch_size`` callbacks per transaction; the database is
    created if needed. Writing the same seed twice stores nothing new (all duplicates).

    Parameters
    ----------
    db : str or Path
        The SQLite database file, or a ``postgresql://`` URL.
    conversations : int
        How many conversations to make (see :func:`generate`).
    seed : int
        Random seed: the same seed gives the same callbacks.
    progress : bool
        Show a progress bar on standard error.
    batch_size : int
        Callbacks per transaction.

    Returns
    -------
    BatchResult
        Counts over all batches: ``stored``, ``duplicate`` (including the deliberate duplicate
        deliveries) and ``rejected`` (always 0 for demo data).
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    total = BatchResult()
    bar = progress_bar("demo", enabled=progress, leave=True, scale=True)
    store = open_store(db)
    try:
        it = generate(conversations, seed=seed)
        while True:
            count = 0

            def chunk():
                nonlocal count
                for item in it:
                    count += 1
                    yield item
                    if count >= batch_size:
                        return

            r = store.insert_batch(chunk(), on_progress=bar.update if bar is not None else None)
            if bar is not None:
                bar.update(count % 1000)
            total.stored += r.stored
            total.duplicate += r.duplicate
            total.rejected += r.rejected
            if count < batch_size:
                break
    finally:
        store.close()
        if bar is not None:
            bar.close()
    return total


def post(
    url: str,
    conversations: int = 500,
    *,
    seed: int = 0,
    progress: bool = False,
    token: str | None = None,
    timeout: float = 10,
) -> dict:
    """Send demo callbacks to a running collector, one POST each, in arrival order.

    Parameters
    ----------
    url : str
        The collector's webhook URL, e.g. ``http://127.0.0.1:5000/webhook?token=SECRET``.
    conversations, seed
        As for :func:`generate`.
    progress : bool
        Show a progress bar on standard error.
    token : str, optional
        The collector's secret, sent as the ``X-Webhook-Token`` header (for a URL without
        ``?token=``).
    timeout : float
        Seconds to wait for each answer.

    Returns
    -------
    dict
        ``{"sent": n, "answers": {"200": n, ...}, "failed": n}``: how many callbacks were sent,
        how many answers of each HTTP status came back, and how many were not 2xx. A ``503`` is
        retried (three times, as a sender should) before it counts.

    Raises
    ------
    TavusAnalyticsError
        When the collector cannot be reached, or answers 401 (missing or wrong token): sending
        stops at once rather than sending everything in vain.
    """
    import requests

    shown = mask_url(url)
    headers = {"Content-Type": "application/json", "User-Agent": "tavus-analytics-demo"}
    if token:
        headers["X-Webhook-Token"] = token
    answers: dict[str, int] = {}
    sent = failed = 0
    bar = progress_bar("demo", enabled=progress, leave=True, scale=True)
    try:
        with requests.Session() as session:
            for body, _ in generate(conversations, seed=seed):
                for attempt in range(4):
                    try:
                        r = session.post(url, data=body, headers=headers, timeout=timeout)
                    except requests.Timeout:
                        raise TavusAnalyticsError(
                            f"the collector at {shown} did not answer within {timeout} s: "
                            "is it overloaded? Try again or raise the timeout"
                        ) from None
                    except requests.RequestException as e:
                        raise TavusAnalyticsError(
                            f"cannot reach the collector at {shown} ({type(e).__name__}): start "
                            "it with `tavus-analytics serve` and check the URL"
                        ) from None
                    if r.status_code != 503 or attempt == 3:
                        break
                    time.sleep(0.2 * (attempt + 1))
                sent += 1
                code = str(r.status_code)
                answers[code] = answers.get(code, 0) + 1
                if r.status_code == 401:
                    raise TavusAnalyticsError(
                        f"the collector at {shown} answered 401 (missing or wrong token) after "
                        f"{sent} callback(s); stopped. Pass the collector's secret in the URL as "
                        "?token=SECRET (the collector prints it on start and keeps it in "
                        "DB.secret)"
                    )
                if not 200 <= r.status_code < 300:
                    failed += 1
                if bar is not None:
                    bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return {"sent": sent, "answers": answers, "failed": failed}
