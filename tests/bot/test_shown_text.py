"""Text Telegram shows outside `message` (poll, to-do list, invoice, game, venue, contact, giveaway)
is the record's searchable text, from the API (TL objects of layer 229) and from Desktop exports; a
caption comes first; entities land where their text does; `raw` keeps what Telegram sent."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from telethon.tl import types

from bot.normalize import normalize
from storage.database import connect_sync
from storage.exchange import import_file
from storage.exchange.desktop import desktop_record
from storage.ingest import ingest_batch
from storage.records import Batch, Channel
from storage.search import search
from tests.real_fixtures import real

BOTH_BACKENDS = True  # every test taking `db` runs on SQLite and on PostgreSQL (tests/bot/conftest.py)

WHEN = datetime(2025, 12, 1, 12, tzinfo=UTC)


def message(media: object, text: str = "", entities: list | None = None) -> types.Message:
    return types.Message(id=10, peer_id=types.PeerChannel(777), date=WHEN, message=text, post=True,
                         media=media, entities=entities)


def twe(text: str, *entities: object) -> types.TextWithEntities:
    return types.TextWithEntities(text, list(entities))


def poll(question: types.TextWithEntities, *answers: str) -> types.MessageMediaPoll:
    return types.MessageMediaPoll(
        poll=types.Poll(id=1, question=question, hash=0,
                        answers=[types.PollAnswer(twe(a), bytes([i])) for i, a in enumerate(answers)]),
        results=types.PollResults(total_voters=5))


def test_a_polls_question_and_answers_are_the_text_with_the_questions_entities():
    record = normalize(message(poll(twe("Is the 🌍 round?", types.MessageEntityBold(7, 2)), "yes", "no")))
    assert record.text == "Is the 🌍 round?\nyes\nno"
    assert record.entities == ({"type": "bold", "offset": 7, "length": 2},)
    assert record.raw["message"] == ""  # what Telegram sent, untouched


def test_a_caption_comes_first_and_the_medias_entities_move_past_it():
    invoice = types.MessageMediaInvoice(title="Annual report", description="All 2025 figures",
                                        currency="XTR", total_amount=1, start_param="")
    record = normalize(message(invoice, "Out now 🎉", [types.MessageEntityItalic(0, 3)]))
    assert record.text == "Out now 🎉\n\nAnnual report\nAll 2025 figures"
    todo = types.MessageMediaToDo(todo=types.TodoList(
        title=twe("Plan", types.MessageEntityBold(0, 4)), list=[types.TodoItem(1, twe("call 🌍 desk"))]))
    record = normalize(message(todo, "🎉 x"))
    assert record.text == "🎉 x\n\nPlan\ncall 🌍 desk"
    assert record.entities == ({"type": "bold", "offset": 6, "length": 4},)  # "🎉 x\n\n" is 6 UTF-16 units


def test_venue_contact_game_and_giveaway_text_is_kept():
    venue = types.MessageMediaVenue(types.GeoPointEmpty(), "Embassy", "Kensington Palace Gardens 6-7",
                                    "", "", "")
    contact = types.MessageMediaContact("+100", "Press", "Office", "", 0)
    game = types.MessageMediaGame(types.Game(1, 2, "g", "Quiz night", "Test your news", types.PhotoEmpty(1)))
    giveaway = types.MessageMediaGiveaway([777], 3, WHEN, prize_description="Signed copies")
    assert [normalize(message(m)).text for m in (venue, contact, game, giveaway)] == [
        "Embassy\nKensington Palace Gardens 6-7", "Press Office", "Quiz night\nTest your news",
        "Signed copies"]


def test_a_poll_from_the_api_is_found_by_search():
    conn = connect_sync(":memory:")
    record = normalize(message(poll(twe("Should sanctions be lifted?"), "yes", "no")))
    ingest_batch(conn, Batch(Channel(777, "polls"), (record,), cursor=10))
    found = search(conn, "sanctions", limit=5).posts
    assert [p.text for p in found] == ["Should sanctions be lifted?\nyes\nno"]


def test_a_desktop_exports_poll_venue_contact_and_invoice_become_text():
    base = {"id": 1, "type": "message", "date": "2025-01-25T15:18:41", "date_unixtime": "1737818321"}
    cases = [
        ({"poll": {"question": "Go?", "answers": [{"text": "yes"}, {"text": "no"}]}, "text": ""},
         "Go?\nyes\nno"),
        ({"location_information": {"latitude": 1, "longitude": 2}, "place_name": "Embassy",
          "address": "Main St 1", "text": "Meet here"}, "Meet here\n\nEmbassy\nMain St 1"),
        ({"contact_information": {"first_name": "Press", "last_name": "", "phone_number": "+1"},
          "text": ""}, "Press"),
        ({"invoice_information": {"title": "Report", "description": "Figures"}, "text": ""},
         "Report\nFigures"),
    ]
    assert [desktop_record(5, {**base, **extra}).text for extra, _ in cases] == [text for _, text in cases]


def test_the_real_trantor_poll_is_archived_with_its_question_and_answers():
    conn = connect_sync(":memory:")
    import_file(conn, real("desktop_export") / "trantor_library_TG101_result.json")
    text, raw = conn.execute("SELECT text, raw FROM messages WHERE message_id = 1010").fetchone()
    assert text == "请问你是否在频道内看到过广告？\n有\n没有\n我不确定那是不是广告\n查看结果"
    assert json.loads(raw)["text"] == ""
