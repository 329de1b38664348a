#!/usr/bin/python3
"""model_check.py -- an independent reference model of threadlog's domain, written from
SPEC.md alone (the product contract, ../shared/SPEC.md beside this repository), plus a random command generator and a comparer.

    python3 model_check.py PATH_TO_THREADLOG [--seeds N] [--steps M] [--seed-base S]
                           [--every K] [--no-minimise] [--keep-going]

Defaults (3 seeds x 150 steps, all queries every 50 steps) take about 40 s on a 2-core machine.

For each seed: `threadlog init` a fresh log, generate random commands against the model,
feed them through the CLI (mostly `apply` batches of JSON lines, sometimes the one-shot
commands), compare every command's result with the model's, and every K commands compare
every query the model can answer (tracking, dashboard, see more, unread, messages, history,
topics), for every user, with the CLI's --json output (cursors followed to the end).
At the end of each seed: `verify`, `replay --into` (digest and all queries again), `replay`
in place, and `replay --until-seq/--until-time` compared with a snapshot of the model.
On the first divergence the command sequence is minimised (delta debugging) and the
minimal reproduction is printed as shell commands; exit status 1.

Where the spec is silent, the model follows docs/DECISIONS.md (FOLLOW_DECISIONS);
those places are marked "DECISIONS.md".  Fields of the JSON answers beyond the spec's shapes
(history entry details, "deleted", "erased") are modelled as threadlog shows them ("more fields
may be added").

Quotations in comments ("SPEC: ...") name the spec sentence each rule comes from.
Standard library only.
"""
import base64
import copy
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time

# ---------------------------------------------------------------------------------------
# Constants from the spec
# ---------------------------------------------------------------------------------------
# SPEC: "ids are 1–64 bytes of `A-Z a-z 0-9 . _ : -`"
ID_RE = re.compile(r'^[A-Za-z0-9._:\-]{1,64}$')
# SPEC: "body over 64 KiB" -> invalid_input
MAX_BODY = 65536
ROLES = ("member", "staff", "ambassador", "auditor")
TYPES = ("application", "order", "video")
# SPEC (Settled details, "When several rules are broken"): the first in this order decides.
ORDER = ["invalid_input", "too_large", "not_found", "exists", "forbidden", "conflict",
         "deleted", "channel_unavailable", "too_many_attachments", "has_replies",
         "already_pinned", "not_pinned"]
# SPEC: "Default page sizes: 50 rows or messages or entries; 5 messages per dashboard panel."
DEFAULT_PAGE = 50
DEFAULT_PANEL = 5
# SPEC: last_activity is the time of the newest of these kinds that U could see.
ACTIVITY_KINDS = {"project.created", "project.status_changed", "topic.created",
                  "message.sent", "message.replied", "note.added"}
# Where the spec is silent (or, once, where it conflicts with erasure) the model follows the
# documented choices of docs/DECISIONS.md when this is True, so that the checker can
# go on looking for real defects; each such place is marked "DECISIONS.md".
FOLLOW_DECISIONS = True
MAX_ATTACHMENT = 100     # we init the log with --max-attachment 100 to test too_large cheaply


class Refused(Exception):
    def __init__(self, code, why=""):
        Exception.__init__(self, code)
        self.code = code
        self.why = why


def valid_id(x):
    return isinstance(x, str) and ID_RE.match(x) is not None


def is_str(x):
    return isinstance(x, str)


def is_int(x):
    return isinstance(x, int) and not isinstance(x, bool)


def has_nul(obj):
    # SPEC: "a NUL character anywhere" -> invalid_input; "a lone surrogate ... or NUL anywhere,
    # keys included"
    if isinstance(obj, str):
        return "\x00" in obj or any(0xD800 <= ord(c) <= 0xDFFF for c in obj)
    if isinstance(obj, list):
        return any(has_nul(x) for x in obj)
    if isinstance(obj, dict):
        return any(has_nul(k) or has_nul(v) for k, v in obj.items())
    return False


def strip_nulls(cmd):
    # SPEC: "`null` for an optional field means absent"; retries: "an explicit `null` equal
    # to an absent field"
    return {k: v for k, v in cmd.items() if v is not None}


# ---------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------
class Model:
    def __init__(self, max_attachment=MAX_ATTACHMENT):
        self.max_attachment = max_attachment
        self.seq = 1                      # SPEC: "Sequence numbers start at 1 with the genesis event."
        self.accounts = {}                # id -> {name}
        self.users = {}                   # id -> {role, account, name}
        self.projects = {}                # id -> dict
        self.topics = {}                  # id -> dict
        self.messages = {}                # id -> dict
        self.attachments = {}             # id -> dict
        self.reads = {}                   # user -> set(message ids) read
        self.events = []                  # history-relevant events (dicts), in seq order
        self.created = {}                 # (kind, id) -> (normalised cmd, original result)
        self.ts = {}                      # seq -> ts (learnt from `log --json`)

    # ---- audiences -------------------------------------------------------------------
    def role(self, u):
        return self.users[u]["role"]

    def in_channel(self, u, proj, channel, account=None):
        """SPEC Channels table: who may read and write each channel (auditors excluded here:
        they read everything but never act)."""
        usr = self.users[u]
        r = usr["role"]
        if channel == "support":
            # SPEC: support audience = the account's members + all staff
            return (r == "member" and usr["account"] == account) or r == "staff"
        p = self.projects[proj]
        if channel == "notes":
            return r == "member" and usr["account"] == p["account"]
        if channel == "chat":
            return (r == "member" and usr["account"] == p["account"]) or r == "staff"
        if channel == "ambassador":
            return (r == "member" and usr["account"] == p["account"]) or \
                   (r == "ambassador" and p["ambassador"] == u)
        raise AssertionError(channel)

    def can_read_channel(self, u, proj, channel, account=None):
        # SPEC: auditor "sees everything, read-only"
        if self.role(u) == "auditor":
            return True
        return self.in_channel(u, proj, channel, account)

    def sees_project(self, u, proj):
        # SPEC (tracking): "members: their account's projects; ambassadors: their projects;
        # staff and auditors: all"
        usr = self.users[u]
        p = self.projects[proj]
        r = usr["role"]
        if r in ("staff", "auditor"):
            return True
        if r == "member":
            return usr["account"] == p["account"]
        return p["ambassador"] == u

    def msg_audience(self, u, m):
        return self.in_channel(u, m["project"], m["channel"], m["account"])

    def is_unread(self, u, m):
        # SPEC: "unread(U, message): true when U is in the message's audience, U is not its
        # author, the message is not deleted, and U has not read it."  Auditors "never [have]
        # unread messages".
        if self.role(u) == "auditor":
            return False
        if m["deleted"] or m["author"] == u:
            return False
        if not self.msg_audience(u, m):
            return False
        return m["id"] not in self.reads.get(u, set())

    def sees_event(self, u, ev):
        """SPEC: "project-level entries (created, status changes) go to everyone who can see
        the project, channel entries to that channel's audience"; auditors see everything."""
        if not self.sees_project(u, ev["project"]) and self.role(u) != "auditor":
            return False
        if ev["channel"] is None:
            return True
        if ev["channel"] == "?unused":
            # DECISIONS.md "Erasing an attachment no message carries": an entry "for the
            # account's members and auditors" (spec silent)
            return self.role(u) == "auditor" or self.in_channel(u, ev["project"], "notes")
        return self.can_read_channel(u, ev["project"], ev["channel"])

    def version(self, u, proj):
        # SPEC: "`version` the sequence number of the newest history entry this user could see"
        v = 0
        for ev in self.events:
            if ev["project"] == proj and self.sees_event(u, ev):
                v = ev["seq"]
        return v

    def last_activity_seq(self, u, proj):
        s = 0
        for ev in self.events:
            if ev["project"] == proj and ev["kind"] in ACTIVITY_KINDS and self.sees_event(u, ev):
                s = ev["seq"]
        return s

    # ---- command execution -----------------------------------------------------------
    def apply(self, cmd, cli_result=None, log_by_seq=None):
        """Executes one command (a parsed JSON object, or the raw line string when it is not
        an object).  Returns the expected result dict.  Generated ids are taken from the CLI's
        result / log (the spec leaves their form to the implementation)."""
        self._cli = cli_result or {}
        self._log = log_by_seq or {}
        if not isinstance(cmd, dict):
            return {"ok": False, "error": "invalid_input"}
        try:
            return self._apply(cmd)
        except Refused as r:
            return {"ok": False, "error": r.code}

    def _gen_id(self, field="id"):
        v = self._cli.get(field)
        return v if isinstance(v, str) else "?gen%d" % self.seq

    def _append(self):
        self.seq += 1
        return self.seq

    # field specifications: name -> (required, kind)
    SPECS = {
        "account.create": {"id": (1, "id"), "name": (1, "str")},
        "user.create": {"id": (1, "id"), "role": (1, "str"), "name": (1, "str"),
                        "account": (0, "id")},
        "project.create": {"as": (1, "id"), "id": (1, "id"), "account": (1, "id"),
                           "type": (1, "str"), "title": (1, "str"), "status": (0, "str"),
                           "ambassador": (0, "id"), "ambassador_message": (0, "str"),
                           "ambassador_message_id": (0, "id"), "expect": (0, "int")},
        "project.status": {"as": (1, "id"), "project": (1, "id"), "status": (1, "str"),
                           "expect": (0, "int")},
        "topic.create": {"as": (1, "id"), "project": (1, "id"), "title": (1, "str"),
                         "body": (1, "str"), "id": (0, "id"), "message_id": (0, "id"),
                         "attachments": (0, "ids"), "expect": (0, "int")},
        "message.send": {"as": (1, "id"), "channel": (1, "str"), "body": (1, "str"),
                         "project": (0, "id"), "topic": (0, "id"), "account": (0, "id"),
                         "id": (0, "id"), "attachments": (0, "ids"), "expect": (0, "int")},
        "note.add": {"as": (1, "id"), "project": (1, "id"), "body": (1, "str"),
                     "id": (0, "id"), "attachments": (0, "ids"), "expect": (0, "int")},
        "message.reply": {"as": (1, "id"), "message": (1, "id"), "body": (1, "str"),
                          "id": (0, "id"), "attachments": (0, "ids"), "expect": (0, "int")},
        "attachment.upload": {"as": (1, "id"), "name": (1, "str"), "data": (1, "str"),
                              "project": (0, "id"), "account": (0, "id"), "mime": (0, "str"),
                              "id": (0, "id"), "expect": (0, "int")},
    }
    for _op in ("message.read", "message.unread", "message.pin", "message.unpin",
                "message.delete"):
        SPECS[_op] = {"as": (1, "id"), "message": (1, "id"), "expect": (0, "int")}
    del _op
    KIND_OF = {"account.create": "account", "user.create": "user", "project.create": "project",
               "topic.create": "topic", "message.send": "message", "note.add": "message",
               "message.reply": "message", "attachment.upload": "attachment"}

    def _exists(self, kind, i):
        return i in {"account": self.accounts, "user": self.users, "project": self.projects,
                     "topic": self.topics, "message": self.messages,
                     "attachment": self.attachments}[kind]

    def _apply(self, raw):
        op = raw.get("op")
        if not isinstance(op, str) or op not in self.SPECS:
            raise Refused("invalid_input", "unknown op")
        if has_nul(raw):
            raise Refused("invalid_input", "NUL")
        cmd = strip_nulls(raw)
        spec = self.SPECS[op]
        # SPEC "Retries first": same id + same content (as parsed JSON, null == absent) ->
        # original result with "duplicate": true, before anything else is checked.
        kind = self.KIND_OF.get(op)
        if kind and valid_id(cmd.get("id")) and (kind, cmd["id"]) in self.created:
            orig_cmd, orig_res = self.created[(kind, cmd["id"])]
            if orig_cmd == cmd and not (FOLLOW_DECISIONS and self._erased_creation(kind, cmd["id"])):
                r = dict(orig_res)
                r["duplicate"] = True
                return r
        # SPEC: "`null` for an optional field means absent" -- only for fields of the command;
        # an unknown field is invalid_input even when null (a retry with an extra null is still
        # the duplicate, above: DECISIONS.md "A retry carrying an extra "x":null")
        for k, v in raw.items():
            if v is None and k not in spec:
                raise Refused("invalid_input", "unknown field " + k)
        # --- invalid_input: shape ---------------------------------------------------
        for k, v in cmd.items():
            if k == "op":
                continue
            if k not in spec:
                raise Refused("invalid_input", "unknown field " + k)
            t = spec[k][1]
            if t == "id" and not valid_id(v):
                raise Refused("invalid_input", "bad id " + k)
            if t == "str" and not is_str(v):
                raise Refused("invalid_input", "not a string " + k)
            if t == "int" and not (is_int(v) and v >= 0) and \
                    not (isinstance(v, float) and v.is_integer() and v >= 0):
                # a version is a non-negative integer (2.0 counts as 2: JSON has one number type)
                raise Refused("invalid_input", "not an int " + k)
            if t == "ids":
                if not isinstance(v, list) or not all(valid_id(x) for x in v):
                    raise Refused("invalid_input", "bad list " + k)
                if len(set(v)) != len(v):
                    # SPEC: "the same attachment twice in one list: invalid_input"
                    raise Refused("invalid_input", "attachment twice")
        for k, (req, _) in spec.items():
            if req and k not in cmd:
                raise Refused("invalid_input", "missing " + k)
        if "body" in cmd:
            b = cmd["body"]
            # SPEC: "empty or invalid UTF-8 body, body over 64 KiB" -> invalid_input
            if b == "" or len(b.encode("utf-8")) > MAX_BODY:
                raise Refused("invalid_input", "body")
        return getattr(self, "_op_" + op.replace(".", "_"))(cmd)

    # helpers ---------------------------------------------------------------------------
    def _erased_creation(self, kind, i):
        """DECISIONS.md "Retry fingerprint": once the content a command created is erased, a
        retry of that command is answered `exists` (the SPEC's retry rule would answer the
        duplicate; the decision keeps the erasure promise).  Only the content the command
        created counts (its body; an upload's bytes; a project's ambassador message)."""
        if kind == "message":
            return self.messages[i].get("erased", False)
        if kind == "topic":
            return self.messages[self.topics[i]["first"]].get("erased", False)
        if kind == "attachment":
            return self.attachments[i].get("erased", False)
        if kind == "project":
            am = self.projects[i]["amb_msg"]
            return am is not None and self.messages[am].get("erased", False)
        return False

    def _need_user(self, u):
        if u not in self.users:
            raise Refused("not_found", "user " + u)

    def _check_attachments(self, cmd, author, proj, account, errs):
        """SPEC: "a message may carry only attachments its author uploaded to the same project
        (or account), each used once" (otherwise invalid_input: "an attachment already used,
        or uploaded by someone else or to another project"); unknown -> not_found; more than 3
        -> too_many_attachments.  proj/account may be "?" when unknown (reply to an unknown
        message): then only 'used' and 'uploader' are judged."""
        atts = cmd.get("attachments", [])
        for a in atts:
            if a not in self.attachments:
                errs.add("not_found")
                continue
            at = self.attachments[a]
            # 'used' and 'uploader' are judged even when the named project is unknown (the
            # order puts invalid_input before not_found); the project is compared only when the
            # named project exists
            bad = at["used"] or at["uploader"] != author
            if proj != "?" and (proj in self.projects or (proj is None and account in self.accounts)):
                if at["project"] != proj:
                    bad = True
                if proj is None and at["account"] != account:
                    bad = True
            if bad:
                errs.add("invalid_input")
        if len(atts) > 3:
            errs.add("too_many_attachments")
        return atts

    @staticmethod
    def _raise_first(errs):
        for code in ORDER:
            if code in errs:
                raise Refused(code)

    def _check_expect(self, cmd, u, proj, errs):
        # SPEC: "when the project has moved on, the command fails with `conflict`"; expect is
        # compared "with the acting user's version of the project".
        if "expect" in cmd and proj is not None and u in self.users and \
                proj in self.projects and self.version(u, proj) != cmd["expect"]:
            errs.add("conflict")

    def _record(self, kind, cmd, res):
        self.created[(kind, res["id"])] = (cmd, dict(res))

    def _event(self, seq, kind, actor, proj, channel, **kw):
        ev = {"seq": seq, "kind": kind, "actor": actor, "project": proj, "channel": channel}
        ev.update(kw)
        self.events.append(ev)

    def _new_message(self, seq, mid, author, proj, account, channel, topic, parent, body, atts,
                     how):
        m = {"id": mid, "author": author, "project": proj, "account": account,
             "channel": channel, "topic": topic, "parent": parent, "body": body,
             "attachments": list(atts), "pinned": False, "pin_seq": 0, "deleted": False,
             "seq": seq, "how": how}
        self.messages[mid] = m
        for a in atts:
            self.attachments[a]["used"] = True
        return m

    # operator commands -------------------------------------------------------------------
    def _op_account_create(self, cmd):
        if cmd["id"] in self.accounts:
            raise Refused("exists")
        s = self._append()
        self.accounts[cmd["id"]] = {"name": cmd["name"]}
        res = {"ok": True, "seq": s, "id": cmd["id"]}
        self._record("account", cmd, res)
        return res

    def _op_user_create(self, cmd):
        role = cmd["role"]
        if role not in ROLES:
            raise Refused("invalid_input", "role")
        # SPEC: "`account` exactly when the role is member"
        if (role == "member") != ("account" in cmd):
            raise Refused("invalid_input", "account iff member")
        if role == "member" and cmd["account"] not in self.accounts:
            raise Refused("not_found")
        if cmd["id"] in self.users:
            raise Refused("exists")
        s = self._append()
        self.users[cmd["id"]] = {"role": role, "account": cmd.get("account"),
                                 "name": cmd["name"]}
        res = {"ok": True, "seq": s, "id": cmd["id"]}
        self._record("user", cmd, res)
        return res

    # projects ----------------------------------------------------------------------------
    def _op_project_create(self, cmd):
        errs = set()
        if cmd["type"] not in TYPES:
            errs.add("invalid_input")
        st = cmd.get("status", "new")     # SPEC: "`status` optional, default `new`"
        if not (1 <= len(st.encode()) <= 64):
            errs.add("invalid_input")
        amb = cmd.get("ambassador")
        if "ambassador_message_id" in cmd and "ambassador_message" not in cmd:
            # SPEC: "`ambassador_message_id` without `ambassador_message`" is an unknown field
            errs.add("invalid_input")
        if "ambassador_message" in cmd:
            # SPEC: "`ambassador_message` on a project that is not an order, that names no
            # ambassador, or that is empty: invalid_input"
            am = cmd["ambassador_message"]
            if cmd["type"] != "order" or amb is None or am == "" or \
                    len(am.encode()) > MAX_BODY:
                errs.add("invalid_input")
        if amb is not None and amb in self.users and self.role(amb) != "ambassador":
            # SPEC: "a user named as `ambassador` who is not an ambassador, is invalid_input"
            errs.add("invalid_input")
        self._raise_first(errs)
        if cmd["as"] not in self.users or cmd["account"] not in self.accounts or \
                (amb is not None and amb not in self.users):
            raise Refused("not_found")
        if cmd["id"] in self.projects:
            raise Refused("exists")
        if "ambassador_message_id" in cmd and cmd["ambassador_message_id"] in self.messages:
            raise Refused("exists")
        u = cmd["as"]
        usr = self.users[u]
        # SPEC: "creating a project — a member of its account, staff, or the project's ambassador"
        ok = (usr["role"] == "member" and usr["account"] == cmd["account"]) or \
             usr["role"] == "staff" or (usr["role"] == "ambassador" and amb == u)
        if not ok:
            raise Refused("forbidden")
        if "expect" in cmd:
            # the project does not exist yet; no version to compare (spec silent) -- the
            # generator never sends it.
            pass
        s = self._append()
        p = {"id": cmd["id"], "account": cmd["account"], "type": cmd["type"],
             "title": cmd["title"], "status": st, "ambassador": amb,
             "amb_channel": "ambassador_message" in cmd, "amb_msg": None, "seq": s}
        self.projects[cmd["id"]] = p
        if "ambassador_message" in cmd:
            mid = cmd.get("ambassador_message_id")
            if mid is None:
                lg = self._log.get(s, {}).get("payload", {})
                mid = lg.get("ambassador_message_id", "?gen%d" % s)
            # SPEC: "authored by that ambassador, whoever records the creation; it becomes the
            # first message of the ambassador channel."
            self._new_message(s, mid, amb, cmd["id"], cmd["account"], "ambassador", None, None,
                              cmd["ambassador_message"], [], "project.created")
            p["amb_msg"] = mid
        self._event(s, "project.created", u, cmd["id"], None)
        res = {"ok": True, "seq": s, "id": cmd["id"]}
        self._record("project", cmd, res)
        return res

    def _op_project_status(self, cmd):
        st = cmd["status"]
        if not (1 <= len(st.encode()) <= 64):
            raise Refused("invalid_input")
        u, pid = cmd["as"], cmd["project"]
        if u not in self.users or pid not in self.projects:
            raise Refused("not_found")
        p = self.projects[pid]
        usr = self.users[u]
        # SPEC: "changing its status — members of its account and staff"
        if not ((usr["role"] == "member" and usr["account"] == p["account"]) or
                usr["role"] == "staff"):
            raise Refused("forbidden")
        errs = set()
        self._check_expect(cmd, u, pid, errs)
        self._raise_first(errs)
        if p["status"] == st:
            # SPEC: "setting the current status is a no-op"
            return {"ok": True, "noop": True}
        s = self._append()
        self._event(s, "project.status_changed", u, pid, None, status=st, previous=p["status"])
        p["status"] = st
        return {"ok": True, "seq": s}

    # messages ----------------------------------------------------------------------------
    def _op_topic_create(self, cmd):
        u, pid = cmd["as"], cmd["project"]
        errs = set()
        atts = self._check_attachments(cmd, u, pid, None, errs)
        if u not in self.users or pid not in self.projects:
            errs.add("not_found")
        if "id" in cmd and cmd["id"] in self.topics:
            errs.add("exists")
        if "message_id" in cmd and cmd["message_id"] in self.messages:
            errs.add("exists")
        if errs & {"invalid_input", "not_found", "exists"}:
            self._raise_first(errs)
        # SPEC: "creating a topic ... — anyone in the channel's audience" (chat)
        if not self.in_channel(u, pid, "chat"):
            errs.add("forbidden")
        self._check_expect(cmd, u, pid, errs)
        self._raise_first(errs)
        s = self._append()
        tid = cmd.get("id") or self._gen_id("id")
        mid = cmd.get("message_id") or self._gen_id("message_id")
        self.topics[tid] = {"id": tid, "project": pid, "title": cmd["title"], "author": u,
                            "seq": s, "first": mid}
        self._new_message(s, mid, u, pid, self.projects[pid]["account"], "chat", tid, None,
                          cmd["body"], atts, "topic.created")
        # SPEC: "`topic.created` is a chat entry"
        self._event(s, "topic.created", u, pid, "chat", message=mid, topic=tid,
                    title=cmd["title"])
        res = {"ok": True, "seq": s, "id": tid, "message_id": mid}
        if "id" in cmd:
            self._record("topic", cmd, res)
        return res

    def _op_message_send(self, cmd):
        ch = cmd["channel"]
        # SPEC: channel is "`chat`, `ambassador` or `support` — internal notes are `note.add`
        # only"; "a field that belongs to another case ... is an unknown field"
        if ch not in ("chat", "ambassador", "support"):
            raise Refused("invalid_input", "channel")
        if ch == "support":
            if "project" in cmd or "topic" in cmd or "account" not in cmd or "expect" in cmd:
                raise Refused("invalid_input", "support fields")
        else:
            if "account" in cmd or "project" not in cmd:
                raise Refused("invalid_input", "project fields")
            if ch == "chat" and "topic" not in cmd:
                # SPEC: "a chat message with no topic ... invalid_input"
                raise Refused("invalid_input", "no topic")
            if ch != "chat" and "topic" in cmd:
                # SPEC: "a topic on another channel: invalid_input"
                raise Refused("invalid_input", "topic on non-chat")
        return self._send_common(cmd, "message.sent", ch, cmd.get("project"),
                                 cmd.get("account"), cmd.get("topic"), None)

    def _op_note_add(self, cmd):
        return self._send_common(cmd, "note.added", "notes", cmd["project"], None, None, None)

    def _op_message_reply(self, cmd):
        u, mid = cmd["as"], cmd["message"]
        if mid not in self.messages:
            errs = {"not_found"}
            self._check_attachments(cmd, u, "?", "?", errs)
            self._raise_first(errs)
        par = self.messages[mid]
        # SPEC: "Replies stay in their parent's channel and topic."
        return self._send_common(cmd, "message.replied", par["channel"], par["project"],
                                 par["account"], par["topic"], par)

    def _send_common(self, cmd, kind, ch, pid, account, tid, parent):
        u = cmd["as"]
        errs = set()
        if u not in self.users:
            errs.add("not_found")
        if pid is not None and pid not in self.projects:
            errs.add("not_found")
        if pid is None and account not in self.accounts:
            errs.add("not_found")
        if tid is not None and parent is None:
            if tid not in self.topics:
                errs.add("not_found")
            elif self.topics[tid]["project"] != pid and pid in self.projects:
                # (only judged when the named project exists: with an unknown project the
                # implementation answers not_found; the spec's order would allow either --
                # see REPORT.md, ambiguities)
                # SPEC: "A topic of another project ... is invalid_input"
                errs.add("invalid_input")
        self._check_attachments(cmd, u, pid, account, errs)
        if "id" in cmd and cmd["id"] in self.messages:
            errs.add("exists")
        if errs & {"invalid_input", "not_found", "exists"}:
            self._raise_first(errs)
        if not self.in_channel(u, pid, ch, account):
            errs.add("forbidden")
        self._check_expect(cmd, u, pid, errs)
        if parent is not None and parent["deleted"]:
            # SPEC: "reply to, read, pin or unpin a deleted message" -> deleted
            errs.add("deleted")
        if ch == "ambassador" and not self.projects[pid]["amb_channel"]:
            # SPEC: "exists only if the ambassador sent a message when the project (order) was
            # created; otherwise writing to it fails with channel_unavailable"
            errs.add("channel_unavailable")
        self._raise_first(errs)
        s = self._append()
        mid = cmd.get("id") or self._gen_id("id")
        acct = account if pid is None else self.projects[pid]["account"]
        self._new_message(s, mid, u, pid, acct, ch, tid, parent["id"] if parent else None,
                          cmd["body"], cmd.get("attachments", []), kind)
        if pid is not None:
            self._event(s, kind, u, pid, ch, message=mid, topic=tid)
        res = {"ok": True, "seq": s, "id": mid}
        if "id" in cmd:
            self._record("message", cmd, res)
        return res

    def _target(self, cmd):
        u, mid = cmd["as"], cmd["message"]
        if mid in self.messages and self.messages[mid]["project"] is None and "expect" in cmd:
            # SPEC: expect "is accepted on every command that names a project or a message of
            # one, and is invalid_input elsewhere" (support messages belong to no project)
            raise Refused("invalid_input")
        if u not in self.users or mid not in self.messages:
            raise Refused("not_found")
        return u, self.messages[mid]

    def _msg_op_checks(self, cmd, u, m, extra=()):
        errs = set(extra)
        # SPEC: "Auditors get `forbidden` for every action, reads and unread marks included."
        if not self.msg_audience(u, m):
            errs.add("forbidden")
        if m["project"] is None and "expect" in cmd:
            # SPEC: expect "is accepted on every command that names a project or a message of
            # one, and is invalid_input elsewhere"
            raise Refused("invalid_input")
        self._check_expect(cmd, u, m["project"], errs)
        if m["deleted"]:
            errs.add("deleted")
        return errs

    def _op_message_read(self, cmd):
        u, m = self._target(cmd)
        errs = self._msg_op_checks(cmd, u, m)
        self._raise_first(errs)
        # SPEC: "Reading a message that the user already read succeeds and appends nothing
        # (report it as a no-op). Reading your own message is a no-op too."
        if m["author"] == u or m["id"] in self.reads.get(u, set()):
            return {"ok": True, "noop": True}
        s = self._append()
        self.reads.setdefault(u, set()).add(m["id"])
        return {"ok": True, "seq": s}

    def _op_message_unread(self, cmd):
        u, m = self._target(cmd)
        errs = self._msg_op_checks(cmd, u, m)
        self._raise_first(errs)
        # SPEC: "a no-op when it already is unread for them or when they wrote it"
        if m["author"] == u or m["id"] not in self.reads.get(u, set()):
            return {"ok": True, "noop": True}
        s = self._append()
        self.reads[u].discard(m["id"])
        return {"ok": True, "seq": s}

    def _op_message_pin(self, cmd):
        u, m = self._target(cmd)
        errs = self._msg_op_checks(cmd, u, m)
        if m["pinned"]:
            errs.add("already_pinned")
        self._raise_first(errs)
        s = self._append()
        m["pinned"] = True
        m["pin_seq"] = s
        if m["project"] is not None:
            self._event(s, "message.pinned", u, m["project"], m["channel"], message=m["id"],
                        topic=m["topic"])
        return {"ok": True, "seq": s}

    def _op_message_unpin(self, cmd):
        u, m = self._target(cmd)
        errs = self._msg_op_checks(cmd, u, m)
        if not m["pinned"]:
            errs.add("not_pinned")
        self._raise_first(errs)
        s = self._append()
        m["pinned"] = False
        if m["project"] is not None:
            self._event(s, "message.unpinned", u, m["project"], m["channel"], message=m["id"],
                        topic=m["topic"])
        return {"ok": True, "seq": s}

    def _op_message_delete(self, cmd):
        u, m = self._target(cmd)
        errs = set()
        # SPEC: "deleting — the author alone"; "delete by anyone but the author" -> forbidden
        if m["author"] != u:
            errs.add("forbidden")
        if m["project"] is None and "expect" in cmd:
            raise Refused("invalid_input")
        self._check_expect(cmd, u, m["project"], errs)
        if m["deleted"]:
            errs.add("deleted")
        # SPEC: "delete while the message has a reply that is not itself deleted" -> has_replies
        if any(r["parent"] == m["id"] and not r["deleted"] for r in self.messages.values()):
            errs.add("has_replies")
        self._raise_first(errs)
        s = self._append()
        m["deleted"] = True
        m["pinned"] = False   # SPEC: auditors' lists show a deleted message with "pinned": false
        if m["project"] is not None:
            self._event(s, "message.deleted", u, m["project"], m["channel"], message=m["id"],
                        topic=m["topic"])
        return {"ok": True, "seq": s}

    def _op_attachment_upload(self, cmd):
        # SPEC: "`project` or, for the support conversation, `account`"
        if ("project" in cmd) == ("account" in cmd):
            raise Refused("invalid_input")
        if "account" in cmd and "expect" in cmd:
            raise Refused("invalid_input")
        try:
            data = cmd["data"]
            if not re.fullmatch(r'[A-Za-z0-9+/]*={0,2}', data) or len(data) % 4:
                raise ValueError
            raw = base64.b64decode(data, validate=True)
        except Exception:
            # SPEC: "data (standard base64 with padding)"
            raise Refused("invalid_input", "base64")
        if len(raw) > self.max_attachment:
            raise Refused("too_large")
        u = cmd["as"]
        pid, acct = cmd.get("project"), cmd.get("account")
        if u not in self.users or (pid is not None and pid not in self.projects) or \
                (acct is not None and acct not in self.accounts):
            raise Refused("not_found")
        if "id" in cmd and cmd["id"] in self.attachments:
            raise Refused("exists")
        # SPEC: "anyone who may write in some channel of the project (or in the account's
        # support conversation) may upload"; ambassadors "may upload only where they may write"
        if pid is not None:
            p = self.projects[pid]
            ok = any(self.in_channel(u, pid, ch) for ch in ("notes", "chat")) or \
                (self.in_channel(u, pid, "ambassador") and p["amb_channel"])
        else:
            ok = self.in_channel(u, None, "support", acct)
        errs = set()
        if not ok:
            errs.add("forbidden")
        self._check_expect(cmd, u, pid, errs)
        self._raise_first(errs)
        s = self._append()
        aid = cmd.get("id") or self._gen_id("id")
        self.attachments[aid] = {"id": aid, "uploader": u, "project": pid,
                                 "account": acct if pid is None else
                                 self.projects[pid]["account"],
                                 "name": cmd["name"],
                                 # SPEC: "Attachments without mime are application/octet-stream"
                                 "mime": cmd.get("mime", "application/octet-stream"),
                                 "size": len(raw), "used": False}
        res = {"ok": True, "seq": s, "id": aid}
        if "id" in cmd:
            self._record("attachment", cmd, res)
        return res

    def erase(self, target, reason):
        """`threadlog erase ID --reason TEXT` (operator).  SPEC: "Erasure (`content.erased`, by
        an operator, with a reason) deletes the content and its salt"; "erased content appears
        as erased".  Erasing twice is treated as a no-op (spec silent)."""
        if not reason or not valid_id(target):
            return {"ok": False, "error": "invalid_input"}
        if target in self.messages:
            m = self.messages[target]
            if m.get("erased"):
                return {"ok": True, "noop": True}
            s = self._append()
            m["erased"] = True
            if m["project"] is not None:
                self._event(s, "content.erased", "@operator", m["project"], m["channel"],
                            message=m["id"], topic=m["topic"], target=target,
                            target_kind="message", reason=reason)
            return {"ok": True, "seq": s, "id": target}
        if target in self.attachments:
            a = self.attachments[target]
            if a.get("erased"):
                return {"ok": True, "noop": True}
            s = self._append()
            a["erased"] = True
            carrier = [m for m in self.messages.values() if target in m["attachments"]]
            if a["project"] is not None:
                # an unused attachment's erasure is an entry of no channel; who sees it is
                # not settled by the spec -- the generator only erases used attachments
                m = carrier[0] if carrier else None
                self._event(s, "content.erased", "@operator", a["project"],
                            m["channel"] if m else "?unused",  # see sees_event
                            message=m["id"] if m else None, topic=m["topic"] if m else None,
                            target=target, target_kind="attachment", reason=reason)
            return {"ok": True, "seq": s, "id": target}
        return {"ok": False, "error": "not_found"}

    # ---- projections -----------------------------------------------------------------------
    def t(self, seq):
        return self.ts.get(seq)

    def att_json(self, ids):
        out = []
        for a in ids:
            d = {"id": a, "name": self.attachments[a]["name"], "size": self.attachments[a]["size"],
                 "mime": self.attachments[a]["mime"]}
            if self.attachments[a].get("erased"):
                d["erased"] = True     # SPEC: "erased content appears as erased"
            out.append(d)
        return out

    def msg_json(self, u, m):
        # SPEC MESSAGE shape; "For auditors, deleted messages are included with
        # "deleted": true"; "replies counts direct replies that are not deleted"
        aud = self.role(u) == "auditor"
        d = self._msg_json(u, m, aud)
        if m.get("erased"):
            d["body"] = None
            d["erased"] = True
        return d

    def _msg_json(self, u, m, aud):
        return {"id": m["id"], "project": m["project"], "channel": m["channel"],
                "topic": m["topic"], "author": m["author"], "body": m["body"],
                "ts": self.t(m["seq"]), "parent": m["parent"],
                "replies": sum(1 for r in self.messages.values()
                               if r["parent"] == m["id"] and not r["deleted"]),
                "pinned": m["pinned"] and not m["deleted"],
                "unread": self.is_unread(u, m) if not aud else False,
                "deleted": m["deleted"], "attachments": self.att_json(m["attachments"])}

    def unread_msgs(self, u):
        return [m for m in self.messages.values() if self.is_unread(u, m)]

    def q_tracking(self, u, typ=None, sort="activity"):
        self._need_user(u)
        if typ is not None and typ not in TYPES:
            raise Refused("invalid_input")
        rows = []
        unread = self.unread_msgs(u)
        for pid, p in self.projects.items():
            if not self.sees_project(u, pid):
                continue
            if typ and p["type"] != typ:
                continue
            las = self.last_activity_seq(u, pid)
            rows.append(({"project": pid, "type": p["type"], "title": p["title"],
                          "status": p["status"], "last_activity": self.t(las),
                          "unread": sum(1 for m in unread if m["project"] == pid),
                          "version": self.version(u, pid)}, las))
        # SPEC: "Default order: last_activity newest first, then project id ascending. 'Unread
        # first' order: unread greatest first, then last_activity newest first, then project id
        # ascending."  "Time ties: newest ... by sequence number."
        if sort == "unread":
            rows.sort(key=lambda r: (-r[0]["unread"], -r[1], r[0]["project"]))
        else:
            rows.sort(key=lambda r: (-r[1], r[0]["project"]))
        return [r[0] for r in rows]

    def q_unread(self, u, project=None):
        self._need_user(u)
        if project is None:
            by = {"application": 0, "order": 0, "video": 0, "support": 0}
            for m in self.unread_msgs(u):
                if m["project"] is None:
                    by["support"] += 1
                else:
                    by[self.projects[m["project"]]["type"]] += 1
            # SPEC: "`total` includes support"
            return {"total": sum(by.values()), "by_type": by}
        if project not in self.projects:
            raise Refused("not_found")
        if not self.sees_project(u, project):
            raise Refused("forbidden")
        p = self.projects[project]
        by = {}
        for ch in ("notes", "chat", "ambassador"):
            # SPEC: "`by_channel` leaves out channels the user cannot see and an ambassador
            # channel that does not exist."
            if ch == "ambassador" and not p["amb_channel"]:
                continue
            if self.can_read_channel(u, project, ch):
                by[ch] = 0
        for m in self.unread_msgs(u):
            if m["project"] == project:
                by[m["channel"]] += 1
        return {"project": project, "total": sum(by.values()), "by_channel": by}

    def q_dashboard_type(self, u, typ):
        ms = [m for m in self.unread_msgs(u) if m["project"] is not None and
              self.projects[m["project"]]["type"] == typ]
        ms.sort(key=lambda m: -m["seq"])   # newest first (ties by sequence number)
        return len(ms), [self.msg_json(u, m) for m in ms]

    def q_dashboard(self, u, limit=DEFAULT_PANEL):
        self._need_user(u)
        panels = []
        for typ in TYPES:   # SPEC: "Dashboard panels come in the order application, order, video."
            n, ms = self.q_dashboard_type(u, typ)
            panels.append({"type": typ, "unread": n, "messages": ms[:limit]})
        return {"panels": panels}

    def q_messages(self, u, project=None, channel=None, topic=None, account=None):
        self._need_user(u)
        aud = self.role(u) == "auditor"
        if channel == "support":
            if account not in self.accounts:
                raise Refused("not_found")
            if not aud and not self.in_channel(u, None, "support", account):
                raise Refused("forbidden")
            ms = [m for m in self.messages.values()
                  if m["channel"] == "support" and m["account"] == account]
        else:
            if channel not in ("notes", "chat", "ambassador"):
                raise Refused("invalid_input")
            if topic is not None and channel != "chat":
                raise Refused("invalid_input")
            if project not in self.projects or (topic is not None and topic not in self.topics):
                raise Refused("not_found")
            if topic is not None and self.topics[topic]["project"] != project:
                raise Refused("invalid_input")
            if not self.can_read_channel(u, project, channel) or \
                    not (aud or self.sees_project(u, project)):
                # SPEC: "Queries outside the user's audience ...: forbidden"
                raise Refused("forbidden")
            if channel == "ambassador" and not self.projects[project]["amb_channel"]:
                # SPEC: "Listing an ambassador channel that does not exist: channel_unavailable"
                raise Refused("channel_unavailable")
            ms = [m for m in self.messages.values()
                  if m["project"] == project and m["channel"] == channel and
                  (topic is None or m["topic"] == topic)]
        if not aud:
            ms = [m for m in ms if not m["deleted"]]   # SPEC: "deleted messages are left out"
        # SPEC: "pinned messages first (most recently pinned first), then the others oldest
        # first"; auditors: "a deleted message keeps its chronological place"
        pinned = sorted([m for m in ms if m["pinned"] and not m["deleted"]],
                        key=lambda m: -m["pin_seq"])
        rest = sorted([m for m in ms if not (m["pinned"] and not m["deleted"])],
                      key=lambda m: m["seq"])
        return [self.msg_json(u, m) for m in pinned + rest]

    def q_topics(self, u, project):
        self._need_user(u)
        if project not in self.projects:
            raise Refused("not_found")
        aud = self.role(u) == "auditor"
        if not aud and not self.in_channel(u, project, "chat"):
            raise Refused("forbidden")   # SPEC: "Topics are listed ... to the chat's audience"
        out = []
        for t in sorted([t for t in self.topics.values() if t["project"] == project],
                        key=lambda t: t["seq"]):
            ms = [m for m in self.messages.values() if m["topic"] == t["id"] and not m["deleted"]]
            out.append({"id": t["id"], "title": t["title"], "author": t["author"],
                        "ts": self.t(t["seq"]), "messages": len(ms),
                        "unread": sum(1 for m in ms if self.is_unread(u, m))})
        return {"topics": out}

    def _hist_msg_fields(self, u, m):
        aud = self.role(u) == "auditor"
        # SPEC: "a deleted message appears as deleted (its body only for auditors)"
        show = aud or not m["deleted"]
        d = {"author": m["author"], "body": m["body"] if show else None,
             "deleted": m["deleted"],
             "attachments": self.att_json(m["attachments"]) if show else []}
        if m.get("erased"):
            d["body"] = None
            d["erased"] = True
        return d

    def q_history(self, u, project):
        self._need_user(u)
        if project not in self.projects:
            raise Refused("not_found")
        aud = self.role(u) == "auditor"
        if not aud and not self.sees_project(u, project):
            raise Refused("forbidden")
        p = self.projects[project]
        out = []
        for ev in self.events:
            if ev["project"] != project or not self.sees_event(u, ev):
                continue
            e = {"seq": ev["seq"], "ts": self.t(ev["seq"]), "actor": ev["actor"],
                 "kind": ev["kind"]}
            k = ev["kind"]
            if k == "project.created":
                # (shape beyond seq/ts/actor/kind is threadlog's: "more fields may be added")
                e.update({"type": p["type"], "title": p["title"],
                          "status": self._initial_status(project), "ambassador": p["ambassador"]})
                # SPEC: "the ambassador message in it only those in the ambassador channel's
                # audience"
                if p["amb_msg"] is not None and self.can_read_channel(u, project, "ambassador"):
                    m = self.messages[p["amb_msg"]]
                    am = {"id": m["id"]}
                    am.update(self._hist_msg_fields(u, m))
                    e["ambassador_message"] = am
            elif k == "project.status_changed":
                e.update({"status": ev["status"], "previous": ev["previous"]})
            elif k in ("topic.created", "message.sent", "message.replied", "note.added"):
                m = self.messages[ev["message"]]
                e.update({"channel": m["channel"], "topic": m["topic"], "message": m["id"],
                          "parent": m["parent"]})
                if k == "topic.created":
                    e["title"] = ev["title"]
                e.update(self._hist_msg_fields(u, m))
            elif k == "content.erased":
                e.update({"channel": None if ev["channel"] == "?unused" else ev["channel"],
                          "topic": ev["topic"],
                          "message": ev["message"], "target": ev["target"],
                          "target_kind": ev["target_kind"], "reason": ev["reason"]})
            else:
                e.update({"channel": ev["channel"], "topic": ev["topic"],
                          "message": ev["message"]})
            out.append(e)
        return {"entries": out}

    def _initial_status(self, project):
        for ev in self.events:
            if ev["project"] == project and ev["kind"] == "project.status_changed":
                return ev["previous"]
        return self.projects[project]["status"]


# ---------------------------------------------------------------------------------------
# The CLI side
# ---------------------------------------------------------------------------------------
class CLI:
    def __init__(self, binary, d):
        self.bin = binary
        self.d = d
        self.calls = 0

    # Under AddressSanitizer, LeakSanitizer's check at exit costs ~45 ms per process (it
    # scans the sanitizer runtimes' memory), more than the command itself; the model makes
    # thousands of runs of the same few commands, which the CLI scenarios already check for
    # leaks one by one. THREADLOG_MODEL_LEAK_EVERY=K (.ci/sanitize) keeps the check on every
    # K-th run only; unset, every run is checked.
    LEAK_EVERY = int(os.environ.get("THREADLOG_MODEL_LEAK_EVERY", "1") or "1")

    def _env(self):
        if self.LEAK_EVERY <= 1 or "ASAN_OPTIONS" not in os.environ or self.calls % self.LEAK_EVERY == 0:
            return None
        env = dict(os.environ)
        env["ASAN_OPTIONS"] += ":detect_leaks=0"
        return env

    def run(self, args, stdin=None):
        self.calls += 1
        p = subprocess.run([self.bin, "-d", self.d, "--json"] + args, input=stdin,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self._env())
        return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")

    def init(self):
        p = subprocess.run([self.bin, "--json", "init", "--max-attachment", str(MAX_ATTACHMENT),
                            self.d], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if p.returncode != 0:
            raise SystemExit("init failed: " + p.stderr.decode())

    def apply(self, lines, nresults, flags=()):
        path = os.path.join(os.path.dirname(self.d), "batch.jsonl")
        with open(path, "w", encoding="utf-8", errors="surrogatepass") as f:
            f.write("".join(l + "\n" for l in lines))
        # group commit sizes and the unsynced mode must not change any answer
        rc, out, err = self.run(["apply", path] + list(flags))
        res = []
        for l in out.splitlines():
            if l.strip():
                try:
                    res.append(json.loads(l))
                except ValueError:
                    res.append({"unparsable": l})
        if len(res) != nresults:
            res += [{"missing_result": True, "rc": rc, "stderr": err[-300:]}] * (nresults - len(res))
        if rc != 0:   # SPEC: "the exit status is 0 when every line was answered"
            res = [dict(r, _apply_exit=rc) for r in res]
        return res

    def oneshot(self, argv):
        rc, out, err = self.run(argv)
        try:
            r = json.loads(out.strip().splitlines()[-1])
        except Exception:
            r = {"unparsable": out, "stderr": err[-300:], "rc": rc}
        if isinstance(r, dict) and r.get("ok") is False and rc != 1:
            r["_bad_exit"] = rc
        return r

    def log_from(self, seq):
        rc, out, err = self.run(["log", "--from", str(seq)])
        evs = {}
        for l in out.splitlines():
            if l.strip():
                e = json.loads(l)
                evs[e["seq"]] = e
        return evs

    def query(self, args):
        rc, out, err = self.run(args)
        try:
            r = json.loads(out)
        except ValueError:
            return {"unparsable": out, "stderr": err[-300:], "rc": rc}
        if isinstance(r, dict) and r.get("ok") is False:
            if rc != 1:   # SPEC: "A refused query prints the same error object ... and exits 1."
                r["_bad_exit"] = rc
        return r


def oneshot_argv(cmd):
    """The one-shot command equivalent to a JSON command, or None when it has no exact one."""
    op = cmd.get("op")
    if op == "@erase":
        return ["erase", cmd["target"], "--reason", cmd["reason"]]
    if op == "@rotate":
        return ["key", "rotate"]
    # flags carry strings: only `expect` may be a number, only `attachments` a list
    for k, v in cmd.items():
        if k == "expect":
            if not is_int(v):
                return None
        elif k == "attachments":
            if not isinstance(v, list):
                return None
        elif not isinstance(v, str):
            return None
    if any(isinstance(v, str) and (v.startswith("-") or "\x00" in v or v == "") for v in cmd.values()):
        return None
    if "attachments" in cmd and (not isinstance(cmd["attachments"], list) or not cmd["attachments"] or not all(isinstance(a, str) and "," not in a for a in cmd["attachments"])):
        return None
    flagmap = {"as": "--as", "project": "--project", "status": "--status", "id": "--id",
               "account": "--account", "type": "--type", "title": "--title",
               "ambassador": "--ambassador", "ambassador_message": "--ambassador-message",
               "ambassador_message_id": "--ambassador-message-id", "expect": "--expect",
               "body": "--body", "message_id": "--message-id", "channel": "--channel",
               "topic": "--topic", "attachments": "--attachments"}
    names = {"project.create": "project", "project.status": "status", "topic.create": "topic",
             "message.send": "send", "note.add": "note", "message.reply": "reply",
             "message.read": "read", "message.unread": "mark-unread", "message.pin": "pin",
             "message.unpin": "unpin", "message.delete": "delete"}
    if op not in names:
        return None
    argv = [names[op]]
    for k, v in cmd.items():
        if k == "op":
            continue
        if k == "message":
            if not isinstance(v, str):
                return None
            argv.append(v)
            continue
        if k not in flagmap:
            return None
        if k == "attachments":
            v = ",".join(v)
        argv += [flagmap[k], str(v)]
    return argv


# ---------------------------------------------------------------------------------------
# Generator
# ---------------------------------------------------------------------------------------
BODIES = ["hello", "Size M please", "Zoé ✓ ok", "when?", "x", "line1\nline2", "👍", "tab\there"]


class Gen:
    def __init__(self, rng, model):
        self.r = rng
        self.m = model
        self.n = 0
        self.history = []        # previous create commands (for retries)

    def nid(self, prefix):
        self.n += 1
        return "%s%d" % (prefix, self.n)

    def setup(self):
        cmds = []
        accts = ["acme", "beta", "c.o_3"]
        for a in accts:
            cmds.append({"op": "account.create", "id": a, "name": a.upper()})
        for a in accts:
            for k in range(2):
                cmds.append({"op": "user.create", "id": "m-%s-%d" % (a, k), "role": "member",
                             "account": a, "name": "Member %d" % k})
        for k in range(2):
            cmds.append({"op": "user.create", "id": "staff%d" % k, "role": "staff",
                         "name": "Staff %d" % k})
        for k in range(3):
            cmds.append({"op": "user.create", "id": "amb%d" % k, "role": "ambassador",
                         "name": "Amb %d" % k})
        cmds.append({"op": "user.create", "id": "aud", "role": "auditor", "name": "Audi"})
        return cmds

    # choice helpers
    def users(self, role=None):
        return sorted(u for u, d in self.m.users.items() if role is None or d["role"] == role)

    def any_user(self):
        r = self.r.random()
        if r < 0.03:
            return "ghost"
        if r < 0.04:
            return "bad id!"
        return self.r.choice(self.users())

    def pick(self, xs, default="nope"):
        return self.r.choice(sorted(xs)) if xs else default

    def msg_target(self):
        r = self.r.random()
        if r < 0.04 or not self.m.messages:
            return self.r.choice(["m-unknown", "m-unknown", "bad/id"])
        # prefer recent messages
        ids = sorted(self.m.messages, key=lambda i: self.m.messages[i]["seq"])
        if self.r.random() < 0.5:
            ids = ids[-8:]
        return self.r.choice(ids)

    def actor_for_channel(self, pid, ch, account=None):
        if self.r.random() < 0.2 or (pid is not None and pid not in self.m.projects):
            return self.any_user()
        cands = [u for u in self.users() if self.m.role(u) != "auditor" and
                 self.m.in_channel(u, pid, ch, account)]
        # prefer someone holding an unused upload for this project/account, so that
        # attachments get used
        holders = sorted(set(a["uploader"] for a in self.m.attachments.values()
                             if not a["used"] and a["project"] == pid and
                             (pid is not None or a["account"] == account)) & set(cands))
        if holders and self.r.random() < 0.5:
            return self.r.choice(holders)
        return self.r.choice(cands) if cands else self.any_user()

    def maybe_expect(self, cmd, u, pid):
        if pid in self.m.projects and u in self.m.users and self.r.random() < 0.15:
            v = self.m.version(u, pid) if u in self.m.users else 1
            cmd["expect"] = v if self.r.random() < 0.6 else max(0, v - self.r.randint(1, 3))

    def attach_list(self, u, pid, account=None):
        mine = [a for a, d in self.m.attachments.items()
                if d["uploader"] == u and not d["used"] and d["project"] == pid and
                (pid is not None or d["account"] == account)]
        r = self.r.random()
        if r < 0.6 and mine:
            return self.r.sample(sorted(mine), min(len(mine), self.r.randint(1, 4)))
        if r < 0.30 and self.m.attachments:
            return [self.r.choice(sorted(self.m.attachments))]
        if r < 0.31:
            return ["a-unknown"]
        return None

    def body(self):
        r = self.r.random()
        if r < 0.02:
            return ""
        if r < 0.025:
            return "b" * (MAX_BODY + 1)
        if r < 0.03:
            return "é" * (MAX_BODY // 2)
        return self.r.choice(BODIES)

    def project_id(self):
        if self.r.random() < 0.04 or not self.m.projects:
            return self.r.choice(["p-unknown", "bad id"])
        return self.r.choice(sorted(self.m.projects))

    def topic_for(self, pid):
        ts = [t for t, d in self.m.topics.items() if d["project"] == pid]
        r = self.r.random()
        if r < 0.05 or (not ts and r < 0.2):
            return self.r.choice([None, "t-unknown"]) if not self.m.topics else \
                self.r.choice(sorted(self.m.topics))
        return self.r.choice(ts) if ts else None

    def step(self):
        g = self.r.random
        kinds = [("project", 8), ("status", 5), ("topic", 7), ("chat", 12), ("amb", 6),
                 ("support", 4), ("note", 7), ("reply", 12), ("read", 12), ("unread", 6),
                 ("pin", 9), ("unpin", 5), ("delete", 7), ("upload", 6), ("retry", 8),
                 ("garbage", 4), ("user", 2), ("erase", 2), ("blank", 1), ("burst", 3), ("rotate", 0.3)]
        tot = sum(w for _, w in kinds)
        x = self.r.uniform(0, tot)
        for k, w in kinds:
            x -= w
            if x <= 0:
                break
        cmd = getattr(self, "g_" + k)()
        if isinstance(cmd, dict) and cmd.get("op") in Model.KIND_OF and "id" in cmd:
            self.history.append(cmd)
        return cmd

    def g_erase(self):
        used = [a for a, d in self.m.attachments.items() if d["used"]]
        r = self.r.random()
        if r < 0.3 and used:
            t = self.r.choice(sorted(used))
        elif r < 0.4 and self.m.attachments:
            t = self.r.choice(sorted(self.m.attachments))
        elif r < 0.95 and self.m.messages:
            t = self.msg_target()
        else:
            t = "nothing-here"
        return {"op": "@erase", "target": t, "reason": self.r.choice(["gdpr", "request 42"])}

    def g_burst(self):
        """Many messages at once in one channel (pages beyond the default 50, dashboard's
        'See more', many projects in tracking)."""
        r = self.r.random()
        out = []
        if r < 0.3:
            for _ in range(self.r.randint(15, 40)):
                out.append(self.g_project())
            return out
        pid = self.project_id()
        if pid not in self.m.projects:
            return self.g_chat()
        ts = sorted(t for t, d in self.m.topics.items() if d["project"] == pid)
        for _ in range(self.r.randint(30, 70)):
            k = self.r.random()
            if k < 0.5 and ts:
                u = self.actor_for_channel(pid, "chat")
                out.append({"op": "message.send", "as": u, "project": pid, "channel": "chat",
                            "topic": self.r.choice(ts), "body": "burst", "id": self.nid("mb")})
            elif k < 0.8:
                u = self.actor_for_channel(pid, "notes")
                out.append({"op": "note.add", "as": u, "project": pid, "body": "burst",
                            "id": self.nid("nb")})
            else:
                u = self.actor_for_channel(pid, "ambassador")
                out.append({"op": "message.send", "as": u, "project": pid,
                            "channel": "ambassador", "body": "burst", "id": self.nid("ab")})
        return out

    def g_rotate(self):
        return {"op": "@rotate"}

    def g_blank(self):
        return self.r.choice(["", "   ", "\t"])

    def g_user(self):
        role = self.r.choice(ROLES)
        c = {"op": "user.create", "id": self.nid("u"), "role": role, "name": "New"}
        if role == "member" or g_rand(self.r, 0.05):
            c["account"] = self.r.choice(sorted(self.m.accounts) + ["zz"])
        return c

    def g_project(self):
        acct = self.r.choice(sorted(self.m.accounts) + (["no-acct"] if g_rand(self.r, 0.03) else []))
        typ = self.r.choice(TYPES + (("podcast",) if g_rand(self.r, 0.03) else ()))
        c = {"op": "project.create", "id": self.nid("p") if g_rand(self.r, 0.95) else self.pick(self.m.projects), "account": acct,
             "type": typ, "title": "Project " + str(self.n)}
        amb = None
        if g_rand(self.r, 0.6):
            amb = self.r.choice(self.users("ambassador") + (["m-acme-0"] if g_rand(self.r, 0.05) else []))
            c["ambassador"] = amb
        if (typ == "order" and amb and g_rand(self.r, 0.7)) or g_rand(self.r, 0.04):
            c["ambassador_message"] = self.body() if g_rand(self.r, 0.3) else "Size M please"
            if g_rand(self.r, 0.85):
                c["ambassador_message_id"] = self.nid("am")
        if g_rand(self.r, 0.3):
            c["status"] = self.r.choice(["pending", "accepted", "new"])
        r = self.r.random()
        if r < 0.35 and amb:
            c["as"] = amb
        elif r < 0.7:
            c["as"] = self.pick([u for u in self.users("member") if self.m.users[u]["account"] == acct] or self.users())
        elif r < 0.85:
            c["as"] = self.r.choice(self.users("staff"))
        else:
            c["as"] = self.any_user()
        return c

    def g_status(self):
        pid = self.project_id()
        u = self.actor_for_channel(pid, "chat") if pid in self.m.projects else self.any_user()
        st = self.r.choice(["pending", "accepted", "shipped", "delivered", "new", "x" * 65])
        if pid in self.m.projects and g_rand(self.r, 0.15):
            st = self.m.projects[pid]["status"]
        c = {"op": "project.status", "as": u, "project": pid, "status": st}
        self.maybe_expect(c, u, pid)
        return c

    def g_topic(self):
        pid = self.project_id()
        u = self.actor_for_channel(pid, "chat")
        c = {"op": "topic.create", "as": u, "project": pid, "title": "Topic %d" % self.n,
             "body": self.body()}
        if g_rand(self.r, 0.9):
            c["id"] = self.nid("t")
        if g_rand(self.r, 0.8):
            c["message_id"] = self.nid("m")
        al = self.attach_list(u, pid)
        if al:
            c["attachments"] = al
        self.maybe_expect(c, u, pid)
        return c

    def _send(self, ch):
        c = {"op": "message.send", "channel": ch, "body": self.body()}
        if ch == "support":
            acct = self.r.choice(sorted(self.m.accounts))
            c["account"] = acct
            u = self.actor_for_channel(None, "support", acct)
            pid = None
        else:
            pid = self.project_id()
            c["project"] = pid
            u = self.actor_for_channel(pid, ch)
            if ch == "chat":
                t = self.topic_for(pid)
                if t is not None:
                    c["topic"] = t
            elif g_rand(self.r, 0.03):
                c["topic"] = self.pick(self.m.topics)
        c["as"] = u
        if g_rand(self.r, 0.93):
            c["id"] = self.nid("m")
        al = self.attach_list(u, pid, c.get("account"))
        if al:
            c["attachments"] = al
        if pid is not None:
            self.maybe_expect(c, u, pid)
        return c

    def g_chat(self):
        return self._send("chat")

    def g_amb(self):
        return self._send("ambassador")

    def g_support(self):
        return self._send("support")

    def g_note(self):
        pid = self.project_id()
        u = self.actor_for_channel(pid, "notes")
        c = {"op": "note.add", "as": u, "project": pid, "body": self.body()}
        if g_rand(self.r, 0.93):
            c["id"] = self.nid("n")
        al = self.attach_list(u, pid)
        if al:
            c["attachments"] = al
        self.maybe_expect(c, u, pid)
        return c

    def _msg_actor(self, mid):
        m = self.m.messages.get(mid)
        if m is None:
            return self.any_user()
        return self.actor_for_channel(m["project"], m["channel"], m["account"])

    def g_reply(self):
        mid = self.msg_target()
        u = self._msg_actor(mid)
        c = {"op": "message.reply", "as": u, "message": mid, "body": self.body()}
        if g_rand(self.r, 0.93):
            c["id"] = self.nid("r")
        m = self.m.messages.get(mid)
        if m:
            al = self.attach_list(u, m["project"], m["account"])
            if al:
                c["attachments"] = al
            if m["project"]:
                self.maybe_expect(c, u, m["project"])
        return c

    def _msgop(self, op):
        mid = self.msg_target()
        u = self._msg_actor(mid)
        m = self.m.messages.get(mid)
        if op == "message.delete" and m and g_rand(self.r, 0.7):
            u = m["author"]
        if op in ("message.read", "message.unread") and m and g_rand(self.r, 0.1):
            u = m["author"]
        c = {"op": op, "as": u, "message": mid}
        if m and m["project"]:
            self.maybe_expect(c, u, m["project"])
        elif m and g_rand(self.r, 0.03):
            c["expect"] = 3
        return c

    def g_read(self):
        return self._msgop("message.read")

    def g_unread(self):
        return self._msgop("message.unread")

    def g_pin(self):
        # often pin a second message in a channel that already has a pinned one (ordering of
        # several pins: "most recently pinned first")
        pinned = [m for m in self.m.messages.values() if m["pinned"]]
        if pinned and self.r.random() < 0.5:
            p = self.r.choice(sorted(pinned, key=lambda m: m["seq"]))
            same = sorted(i for i, m in self.m.messages.items()
                          if m["project"] == p["project"] and m["channel"] == p["channel"] and
                          m["account"] == p["account"] and not m["pinned"] and not m["deleted"])
            if same:
                mid = self.r.choice(same)
                return {"op": "message.pin", "as": self._msg_actor(mid), "message": mid}
        return self._msgop("message.pin")

    def g_unpin(self):
        return self._msgop("message.unpin")

    def g_delete(self):
        # often delete a live leaf reply (so that parents show reply counts without it)
        leaves = [m for m in self.m.messages.values() if m["parent"] and not m["deleted"] and
                  not any(r["parent"] == m["id"] and not r["deleted"]
                          for r in self.m.messages.values())]
        if leaves and self.r.random() < 0.35:
            m = self.r.choice(sorted(leaves, key=lambda m: m["seq"]))
            return {"op": "message.delete", "as": m["author"], "message": m["id"]}
        return self._msgop("message.delete")

    def g_upload(self):
        size = self.r.choice([0, 1, 5, 30, MAX_ATTACHMENT, MAX_ATTACHMENT + 1])
        data = base64.b64encode(bytes(self.r.randrange(256) for _ in range(size))).decode()
        if g_rand(self.r, 0.03):
            data = "not base64!"
        c = {"op": "attachment.upload", "name": "f%d.bin" % self.n, "data": data}
        if g_rand(self.r, 0.2):
            acct = self.r.choice(sorted(self.m.accounts))
            c["account"] = acct
            u = self.actor_for_channel(None, "support", acct)
        else:
            pid = self.project_id()
            c["project"] = pid
            u = self.actor_for_channel(pid, self.r.choice(["notes", "chat", "ambassador"]))
            self.maybe_expect(c, u, pid)
        c["as"] = u
        if g_rand(self.r, 0.6):
            c["mime"] = self.r.choice(["image/png", "application/pdf"])
        if g_rand(self.r, 0.95):
            c["id"] = self.nid("a")
        return c

    def g_retry(self):
        if not self.history:
            return self.g_chat()
        if self.m.created and self.r.random() < 0.7:
            c = dict(self.r.choice(sorted(self.m.created.values(), key=lambda x: x[1]["seq"])[-30:])[0])
        else:
            c = dict(self.r.choice(self.history[-30:]))
        r = self.r.random()
        if r < 0.55:
            if self.r.random() < 0.5:                  # SPEC: "equal as parsed JSON"
                ks = list(c)
                self.r.shuffle(ks)
                c = {k: c[k] for k in ks}
            return c                                   # exact retry
        if r < 0.6:
            c = dict(c)
            k = self.r.choice([k for k in c if k not in ("op", "id")])
            c[k] = None if k not in ("as", "name", "title", "body", "role", "account", "type", "channel", "project", "data") else c[k]
            return c                                   # explicit null = absent (or same)
        if "body" in c:
            c["body"] = c["body"] + "!"
        elif "name" in c:
            c["name"] = c["name"] + "!"
        elif "title" in c:
            c["title"] = c["title"] + "!"
        return c                                       # same id, different content -> exists

    def g_garbage(self):
        base = self.r.choice([self.g_chat, self.g_note, self.g_read, self.g_project,
                              self.g_topic, self.g_reply, self.g_upload, self.g_status])()
        c = dict(base)
        r = self.r.randrange(12)
        keys = [k for k in c if k != "op"]
        if r == 0:
            c["bogus"] = 1                                  # unknown field
        elif r == 1:
            del c[self.r.choice(keys)]                      # missing field (maybe optional)
        elif r == 2:
            c[self.r.choice(keys)] = None                   # null (required -> invalid)
        elif r == 3:
            c[self.r.choice(keys)] = 42                     # wrong type
        elif r == 4:
            c["as"] = self.r.choice(["", "x" * 65, "a b", "é"])   # bad id
        elif r == 5:
            c["body" if "body" in c else "as"] = "a\x00b"     # NUL
        elif r == 6:
            return '{"op":"message.send", "as": '            # malformed JSON line
        elif r == 7:
            c["op"] = "message.shout"
        elif r == 8:
            c["channel"] = "notes"
        elif r == 9:
            c["attachments"] = ["a1", "a1"]
        elif r == 10:
            return "[1,2,3]"
        elif r == 11:
            c["account"] = "acme"                             # field of another case
        return c


def g_rand(r, p):
    return r.random() < p


# ---------------------------------------------------------------------------------------
# Queries: what the model can answer, as CLI argument lists
# ---------------------------------------------------------------------------------------
PAGED = {"tracking": "rows", "messages": "messages", "history": "entries", "more": "messages"}


def all_queries(model, rng, thorough=True):
    """Every query the model answers, for every user (plus an unknown user)."""
    qs = []
    users = sorted(model.users) + ["ghost"]
    projs = sorted(model.projects) + ["p-unknown"]
    for u in users:
        for sort in ("activity", "unread"):
            qs.append(["tracking", "--as", u, "--sort", sort])
            for typ in TYPES:
                if thorough or rng.random() < 0.3:
                    qs.append(["tracking", "--as", u, "--sort", sort, "--type", typ])
            qs.append(["tracking", "--as", u, "--sort", sort, "--limit", str(rng.randint(1, 3))])
        qs.append(["tracking", "--as", u, "--type", rng.choice(TYPES), "--limit", str(rng.randint(1, 2))])
        qs.append(["dashboard", "--as", u])
        qs.append(["dashboard", "--as", u, "--limit", str(rng.randint(1, 3))])
        for typ in TYPES:
            qs.append(["dashboard", "--as", u, "--type", typ, "--more"] +
                      (["--limit", str(rng.randint(1, 3))] if rng.random() < 0.7 else []))
        qs.append(["unread", "--as", u])
        for p in projs:
            if not thorough and rng.random() < 0.5:
                continue
            qs.append(["unread", "--as", u, "--project", p])
            lim = ["--limit", str(rng.randint(1, 4))] if rng.random() < 0.4 else []
            qs.append(["history", "--as", u, "--project", p] + lim)
            qs.append(["topics", "--as", u, "--project", p])
            for ch in ("notes", "chat", "ambassador"):
                lim = ["--limit", str(rng.randint(1, 4))] if rng.random() < 0.4 else []
                qs.append(["messages", "--as", u, "--project", p, "--channel", ch] + lim)
            for t in sorted(t for t, d in model.topics.items() if d["project"] == p):
                qs.append(["messages", "--as", u, "--project", p, "--channel", "chat",
                           "--topic", t])
        for a in sorted(model.accounts):
            lim = ["--limit", str(rng.randint(1, 4))] if rng.random() < 0.3 else []
            qs.append(["messages", "--as", u, "--account", a, "--channel", "support"] + lim)
        # odd queries: unknown field values / bad ids are invalid_input; a topic of another
        # project; --topic outside chat; an unknown account
        if thorough:
            p = rng.choice(projs)
            qs.append(["tracking", "--as", u, "--type", "podcast"])
            qs.append(["dashboard", "--as", u, "--type", "podcast", "--more"])
            qs.append(["messages", "--as", u, "--project", p, "--channel", "gossip"])
            qs.append(["messages", "--as", u, "--project", p, "--channel", "notes", "--topic",
                       rng.choice(sorted(model.topics) or ["t-unknown"])])
            qs.append(["messages", "--as", u, "--project", p, "--channel", "chat", "--topic",
                       rng.choice(sorted(model.topics) or ["t-unknown"])])
            qs.append(["messages", "--as", u, "--account", "no-such", "--channel", "support"])
            qs.append(["history", "--as", u, "--project", "bad id"])
    return qs


def flag(args, name, default=None):
    return args[args.index(name) + 1] if name in args else default


def model_answer(model, args):
    """(kind, expected) -- expected is a dict (error or full answer) for paged queries the
    full list of items in 'items' plus the non-paged fields."""
    kind = args[0]
    u = flag(args, "--as")
    try:
        # SPEC: "A syntactically bad id anywhere is invalid_input; a well-formed id that does
        # not exist is not_found."
        for f in ("--as", "--project", "--topic", "--account"):
            if f in args and not valid_id(flag(args, f)):
                raise Refused("invalid_input")
        # unknown field values come first too (invalid_input precedes not_found)
        if "--type" in args and flag(args, "--type") not in TYPES:
            raise Refused("invalid_input")
        if "--channel" in args:
            ch = flag(args, "--channel")
            if ch not in ("notes", "chat", "ambassador", "support"):
                raise Refused("invalid_input")
            if "--topic" in args and ch != "chat":
                raise Refused("invalid_input")
        if kind == "tracking":
            return {"items": model.q_tracking(u, flag(args, "--type"), flag(args, "--sort", "activity"))}
        if kind == "dashboard" and "--more" in args:
            model._need_user(u)
            if flag(args, "--type") not in TYPES:
                raise Refused("invalid_input")   # SPEC: "unknown field value" -> invalid_input
            n, ms = model.q_dashboard_type(u, flag(args, "--type"))
            return {"type": flag(args, "--type"), "unread": n, "items": ms}
        if kind == "dashboard":
            return model.q_dashboard(u, int(flag(args, "--limit", DEFAULT_PANEL)))
        if kind == "unread":
            return model.q_unread(u, flag(args, "--project"))
        if kind == "messages":
            return {"items": model.q_messages(u, flag(args, "--project"), flag(args, "--channel"),
                                              flag(args, "--topic"), flag(args, "--account"))}
        if kind == "history":
            return {"items": model.q_history(u, flag(args, "--project"))["entries"]}
        if kind == "topics":
            return model.q_topics(u, flag(args, "--project"))
    except Refused as r:
        return {"ok": False, "error": r.code}
    raise AssertionError(args)


def cli_answer(cli, args):
    """Runs the query; paged ones are followed through their cursors.  Returns a dict shaped
    like model_answer's, or a dict with "_problem" describing a paging problem."""
    kind = "more" if "--more" in args else args[0]
    r = cli.query(args)
    if not isinstance(r, dict) or r.get("ok") is False or "unparsable" in r:
        if isinstance(r, dict) and r.get("ok") is False:
            return {"ok": False, "error": r.get("error"), **({"_bad_exit": r["_bad_exit"]} if "_bad_exit" in r else {})}
        return r
    if kind not in PAGED:
        return r
    key = PAGED[kind]
    limit = int(flag(args, "--limit", DEFAULT_PAGE))
    items = []
    pages = 0
    out = {k: v for k, v in r.items() if k not in (key, "next")}
    while True:
        pages += 1
        page = r.get(key)
        if not isinstance(page, list):
            return {"_problem": "no list %r in %r" % (key, r)}
        if len(page) > limit:
            return {"_problem": "page of %d items with --limit %d" % (len(page), limit)}
        items += page
        nxt = r.get("next", "MISSING")
        if nxt == "MISSING":
            return {"_problem": "no 'next' field"}
        if nxt is None:
            break
        if len(page) < limit:
            out["_short_page_with_next"] = True
        if pages > 500:
            return {"_problem": "cursor loop"}
        r = cli.query(args + ["--cursor", nxt])
        if not isinstance(r, dict) or r.get("ok") is False:
            return {"_problem": "cursor page failed: %r" % (r,)}
        for k, v in r.items():
            if k not in (key, "next") and out.get(k) != v:
                out["_page_field_changed"] = k
    out["items"] = items
    return out


# ---------------------------------------------------------------------------------------
# Runner
# ---------------------------------------------------------------------------------------
def norm_result(r):
    """The part of a command result the spec fixes: ok, error code, seq, id, message_id,
    noop, duplicate (the human 'message' text is free)."""
    if not isinstance(r, dict):
        return r
    out = {k: r[k] for k in ("ok", "error", "seq", "id", "message_id", "noop", "duplicate",
                             "_bad_exit", "unparsable", "missing_result", "_apply_exit") if k in r}
    return out


def needs_flush(cmd):
    """A command whose created id is generated by threadlog ends an apply batch, so that the
    generator can use the id."""
    if not isinstance(cmd, dict):
        return False
    op = cmd.get("op")
    if op in ("topic.create",) and (cmd.get("id") is None or cmd.get("message_id") is None):
        return True
    if op in ("message.send", "note.add", "message.reply", "attachment.upload") and cmd.get("id") is None:
        return True
    if op == "project.create" and cmd.get("ambassador_message") is not None and \
            cmd.get("ambassador_message_id") is None:
        return True
    return False


def short(s, n=400):
    return s if len(s) <= n else s[:n] + "...(%d bytes)" % len(s)


def parse_cmd(c):
    if isinstance(c, str):
        try:
            return json.loads(c)
        except ValueError:
            return None
    return c


def is_blank(cmd):
    return isinstance(cmd, str) and cmd.strip(" \t") == ""


def line_of(cmd):
    return cmd if isinstance(cmd, str) else json.dumps(cmd, ensure_ascii=False)


class Divergence(Exception):
    def __init__(self, sig, detail, upto, query=None):
        Exception.__init__(self, detail)
        self.sig = sig
        self.detail = detail
        self.upto = upto         # number of steps executed when it was seen
        self.query = query


class Session:
    def __init__(self, binary, workdir):
        self.dir = os.path.join(workdir, "log")
        shutil.rmtree(workdir, ignore_errors=True)
        os.makedirs(workdir)
        self.cli = CLI(binary, self.dir)
        self.cli.init()
        self.model = Model()
        self.model.ts.update({s: e["ts"] for s, e in self.cli.log_from(1).items()})
        self.steps = []          # (cmd, mode) mode in {"apply", "oneshot"}
        self.pending = []
        self.queries = 0
        self.results = 0

    def run_batch(self, batch, mode):
        """batch: list of commands; runs them through the CLI, then through the model, and
        compares each result."""
        start = len(self.steps)
        first_seq = self.model.seq + 1
        if mode == "oneshot":
            res = [self.cli.oneshot(oneshot_argv(batch[0]))]
        else:
            # SPEC: "Blank lines are skipped and get no result line"; "a line of only white
            # space is blank"
            nonblank = [c for c in batch if not is_blank(c)]
            res = iter(self.cli.apply([line_of(c) for c in batch], len(nonblank)))
            res = [None if is_blank(c) else next(res) for c in batch]
        log = self.cli.log_from(first_seq)
        for s, e in log.items():
            self.model.ts[s] = e["ts"]
        for i, (c, r) in enumerate(zip(batch, res)):
            self.steps.append((c, mode))
            if r is None:
                continue
            parsed = parse_cmd(c)
            if isinstance(parsed, dict) and parsed.get("op") == "@erase":
                exp = self.model.erase(parsed["target"], parsed["reason"])
            elif isinstance(parsed, dict) and parsed.get("op") == "@rotate":
                # `key rotate`: a key.rotated event by @operator; no projection changes
                self.model._append()
                exp = {"ok": True}     # its result gives the new public key, no seq
            else:
                exp = self.model.apply(parsed, r if isinstance(r, dict) else {}, log)
            self.compare_result(c, parsed, exp, r, start + i + 1, log)

    def submit(self, c, mode="apply"):
        """Queue one command.  An `apply` command whose ids are all chosen by the caller is run
        through the model at once (so that the generator sees the state inside a batch, and one
        group commit holds dependent commands) and through the CLI at the next flush(); others
        (one-shot commands, commands with generated ids) flush the queue and run alone."""
        if mode == "oneshot" or needs_flush(c):
            self.flush()
            self.run_batch([c], mode)
            return
        parsed = parse_cmd(c)
        before = self.model.seq
        exp = None if is_blank(c) else self.model.apply(parsed, {}, {})
        self.pending.append((c, parsed, exp, before))

    def flush(self):
        if not self.pending:
            return
        batch, self.pending = self.pending, []
        start = len(self.steps)
        nonblank = [b for b in batch if b[2] is not None]
        flags = random.Random(len(self.steps)).choice(
            [(), (), ("--sync-every", "1"), ("--sync-every", "3"), ("--nosync",)])
        res = self.cli.apply([line_of(b[0]) for b in batch], len(nonblank), flags)
        log = self.cli.log_from(batch[0][3] + 1)
        for s, e in log.items():
            self.model.ts[s] = e["ts"]
        res = iter(res)
        for i, (c, parsed, exp, before) in enumerate(batch):
            self.steps.append((c, "apply"))
            if exp is None:
                continue
            r = next(res)
            self.compare_result(c, parsed, exp, r, start + i + 1, log)

    def compare_result(self, c, parsed, exp, r, upto, log):
        got = norm_result(r)
        self.results += 1
        if exp == got and exp.get("seq") and not exp.get("duplicate"):
            self.check_log_event(parsed, exp, log.get(exp.get("seq")))
        if exp != got:
            op = parsed.get("op") if isinstance(parsed, dict) else "raw"
            sig = ("result", op, exp.get("error", "ok" if exp.get("ok") else None),
                   got.get("error", "ok" if got.get("ok") else None) if isinstance(got, dict) else None)
            if sig[2] == sig[3]:
                sig = sig + (tuple(sorted(k for k in set(exp) | set(got) if exp.get(k) != got.get(k))),)
            raise Divergence(sig, "command %s\n  model: %s\n  cli:   %s" % (
                short(line_of(c)), json.dumps(exp), json.dumps(r, ensure_ascii=False)), upto)

    def check_log_event(self, cmd, res, ev):
        """SPEC: "Every event records its sequence number, time ..., the acting user, its kind";
        "Every event about a project, or about a message of a project, carries the project's
        id"; account.create/user.create/erase: "their actor is recorded as @operator";
        time "never decreasing along the log"."""
        op = cmd["op"]
        kinds = {"account.create": "account.created", "user.create": "user.created",
                 "project.create": "project.created", "project.status": "project.status_changed",
                 "topic.create": "topic.created", "message.send": "message.sent",
                 "note.add": "note.added", "message.reply": "message.replied",
                 "message.read": "message.read", "message.unread": "message.unread",
                 "message.pin": "message.pinned", "message.unpin": "message.unpinned",
                 "message.delete": "message.deleted", "attachment.upload": "attachment.uploaded",
                 "@erase": "content.erased", "@rotate": "key.rotated"}
        m = self.model
        proj = None
        if op in ("project.create", "project.status", "topic.create", "note.add"):
            proj = cmd.get("project", cmd.get("id"))
        elif op == "message.send":
            proj = cmd.get("project")
        elif op == "message.reply":
            proj = m.messages[cmd["message"]]["project"]
        elif op in ("message.read", "message.unread", "message.pin", "message.unpin",
                    "message.delete"):
            proj = m.messages[cmd["message"]]["project"]
        elif op == "attachment.upload":
            proj = cmd.get("project")
        elif op == "@rotate":
            proj = None
        elif op == "@erase":
            t = cmd["target"]
            proj = m.messages[t]["project"] if t in m.messages else m.attachments[t]["project"]
        exp = {"seq": res["seq"], "kind": kinds[op], "actor": cmd.get("as", "@operator")}
        if proj is not None:
            exp["project"] = proj
        got = None if ev is None else {k: ev[k] for k in ("seq", "kind", "actor", "project") if k in ev}
        prev = m.ts.get(res["seq"] - 1)
        if ev is not None and prev is not None and ev["ts"] < prev:
            got["ts_decreased"] = True
        if exp != got:
            raise Divergence(("log", op), "log --json event for %r\n  model: %s\n  cli:   %s" % (
                line_of(cmd), exp, json.dumps(ev)), len(self.steps))

    def check_query(self, args, cli=None, model=None, where=""):
        self.queries += 1
        exp = model_answer(model or self.model, args)
        got = cli_answer(cli or self.cli, args)
        if exp != got:
            sig = ("query",) + tuple(a for a in args if a.startswith("--") and a != "--as") + (args[0],)
            diff = first_diff(exp, got)
            raise Divergence(sig, where + "query: threadlog %s\n  first difference at %s\n  model: %s\n  cli:   %s" % (
                " ".join(args), diff[0], json.dumps(diff[1], ensure_ascii=False)[:1500],
                json.dumps(diff[2], ensure_ascii=False)[:1500]), len(self.steps), args)

    def check_all(self, rng, thorough, cli=None, model=None, where=""):
        for q in all_queries(model or self.model, rng, thorough):
            self.check_query(q, cli, model, where)

    def check_replays(self, rng, snap):
        """SPEC: "projections always equal a fresh replay"; `replay` rebuilds "in place or
        into another directory, optionally up to a sequence number ... (the state as it was
        then)"; `verify` checks the whole log."""
        rc, out, err = self.cli.run(["verify"])
        if rc != 0:
            raise Divergence(("verify",), "verify failed: " + out + err, len(self.steps))
        base = os.path.dirname(self.dir)
        full = os.path.join(base, "replayed")
        shutil.rmtree(full, ignore_errors=True)
        rc, out, err = self.cli.run(["replay", "--into", full])
        _, live, _ = self.cli.run(["digest"])
        rcli = CLI(self.cli.bin, full)
        _, rep_d, _ = rcli.run(["digest"])
        if rc != 0 or json.loads(live).get("digest") != json.loads(rep_d).get("digest"):
            raise Divergence(("replay-digest",), "replay --into: %s\nlive digest %s, replayed %s"
                             % (out + err, live, rep_d), len(self.steps))
        self.check_all(rng, False, rcli, self.model, "[replayed copy] ")
        # in place: "readers keep the old projections until the new ones are complete and
        # swapped in"; afterwards the live answers are unchanged
        rc, out, err = self.cli.run(["replay"])
        if rc != 0:
            raise Divergence(("replay-in-place",), "replay in place failed: " + out + err,
                             len(self.steps))
        self.check_all(rng, False, None, None, "[after replay in place] ")
        if snap is not None:
            sm, sseq, upto = snap
            # DECISIONS.md: "a copy cut at N keeps erased what was erased after N"
            for i, m in self.model.messages.items():
                if m.get("erased") and i in sm.messages:
                    sm.messages[i]["erased"] = True
            for i, a in self.model.attachments.items():
                if a.get("erased") and i in sm.attachments:
                    sm.attachments[i]["erased"] = True
            cut = os.path.join(base, "cut")
            shutil.rmtree(cut, ignore_errors=True)
            if rng.random() < 0.5:
                until = ["--until-seq", str(sseq)]
            else:
                # DECISIONS.md: event times strictly increase, so the state as of the time of
                # event N is the state as of event N
                until = ["--until-time", str(self.model.ts[sseq])]
            rc, out, err = self.cli.run(["replay", "--into", cut] + until)
            if rc != 0:
                raise Divergence(("replay-until",), "replay --until-seq failed: " + out + err,
                                 len(self.steps))
            try:
                self.check_all(rng, False, CLI(self.cli.bin, cut), sm,
                               "[replay %s] " % " ".join(until))
            except Divergence as d:
                d.sig = ("until-seq",) + d.sig
                d.upto = upto
                d.query = None
                raise


def first_diff(a, b, path="$"):
    if type(a) != type(b):
        return path, a, b
    if isinstance(a, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                return path + "." + k, a.get(k, "<absent>"), b.get(k, "<absent>")
            if a[k] != b[k]:
                return first_diff(a[k], b[k], path + "." + k)
        return path, a, b
    if isinstance(a, list):
        for i in range(min(len(a), len(b))):
            if a[i] != b[i]:
                return first_diff(a[i], b[i], "%s[%d]" % (path, i))
        if len(a) != len(b):
            return path + ".length", len(a), len(b)
    return path, a, b


def run_seed(binary, seed, steps, every, workdir):
    rng = random.Random(seed)
    s = Session(binary, workdir)
    gen = Gen(rng, s.model)
    for c in gen.setup():
        s.submit(c)
    s.flush()
    done = 0
    snap = None
    while done < steps:
        cs = gen.step()
        for c in (cs if isinstance(cs, list) else [cs]):
            argv = oneshot_argv(c) if isinstance(c, dict) else None
            if argv and (rng.random() < 0.15 or c["op"] in ("@erase", "@rotate")):
                s.submit(c, "oneshot")
            else:
                s.submit(c)
                if len(s.pending) >= rng.randint(1, 30):
                    s.flush()
        done += 1
        if done % every == 0 or done == steps:
            s.flush()
            s.check_all(rng, thorough=(done == steps))
            if done != steps and (snap is None or rng.random() < 0.4):
                snap = (copy.deepcopy(s.model), s.model.seq, len(s.steps))
    s.check_replays(rng, snap if snap and snap[1] < s.model.seq else None)
    return s


def replay(binary, steps, query, workdir):
    """Re-run a list of (cmd, mode) from scratch; return the first Divergence or None."""
    s = Session(binary, workdir)
    try:
        for c, mode in steps:
            s.submit(c, mode if (mode == "apply" or (isinstance(c, dict) and oneshot_argv(c))) else "apply")
        s.flush()
        if query:
            s.check_query(query)
    except Divergence as d:
        return d
    return None


def minimise(binary, steps, div, workdir, budget_s=240):
    """ddmin over the command list, keeping the same divergence signature."""
    t0 = time.time()
    steps = list(steps[:div.upto])
    query = div.query
    if div.sig[0] == "result":
        query = None

    def fails(cand):
        d = replay(binary, cand, query, workdir)
        return d is not None and d.sig == div.sig

    n = 2
    while len(steps) >= 2 and time.time() - t0 < budget_s:
        chunk = max(1, len(steps) // n)
        reduced = False
        for i in range(0, len(steps), chunk):
            cand = steps[:i] + steps[i + chunk:]
            if cand and fails(cand):
                steps = cand
                n = max(n - 1, 2)
                reduced = True
                break
            if time.time() - t0 > budget_s:
                break
        if not reduced:
            if chunk == 1:
                break
            n = min(len(steps), n * 2)
    final = replay(binary, steps, query, workdir)
    return steps, final or div


def repro_text(binary, steps, div):
    out = ["rm -rf /tmp/repro && %s init --max-attachment %d /tmp/repro" % (binary, MAX_ATTACHMENT)]
    batch = []

    def flush():
        if batch:
            out.append("%s -d /tmp/repro apply <<'EOF'\n%s\nEOF" % (binary, "\n".join(batch)))
            batch.clear()
    for c, mode in steps:
        if mode == "oneshot" and isinstance(c, dict) and oneshot_argv(c):
            flush()
            out.append("%s -d /tmp/repro --json %s" % (binary, " ".join(shquote(a) for a in oneshot_argv(c))))
        else:
            batch.append(line_of(c))
    flush()
    if div.query:
        out.append("%s -d /tmp/repro --json %s" % (binary, " ".join(shquote(a) for a in div.query)))
    return "\n".join(out)


def shquote(a):
    if re.fullmatch(r"[A-Za-z0-9._:/=,@+-]+", a):
        return a
    return "'" + a.replace("'", "'\\''") + "'"


def main():
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("binary")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--seed-base", type=int, default=1)
    ap.add_argument("--every", type=int, default=50, help="compare all queries every K commands")
    ap.add_argument("--no-minimise", action="store_true")
    ap.add_argument("--keep-going", action="store_true", help="report each seed's divergence and go on")
    args = ap.parse_args()
    binary = os.path.abspath(args.binary)
    work = tempfile.mkdtemp(prefix="model_check.")
    totals = {"seeds": 0, "commands": 0, "queries": 0, "cli_calls": 0}
    failed = 0
    t0 = time.time()
    try:
        for seed in range(args.seed_base, args.seed_base + args.seeds):
            sess = None
            try:
                sess = run_seed(binary, seed, args.steps, args.every, os.path.join(work, "s"))
                totals["seeds"] += 1
                totals["commands"] += sess.results
                totals["queries"] += sess.queries
                totals["cli_calls"] += sess.cli.calls
            except Divergence as d:
                failed += 1
                print("seed %d: DIVERGENCE %s\n%s" % (seed, d.sig, d.detail))
                if not args.no_minimise:
                    steps = replay_steps(binary, seed, args.steps, args.every, work)
                    msteps, md = minimise(binary, steps, d, os.path.join(work, "m"))
                    print("minimal reproduction (%d commands):\n%s\n%s\n" % (
                        len(msteps), repro_text(binary, msteps, md), md.detail))
                if not args.keep_going:
                    break
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("seeds=%d commands=%d queries=%d cli_calls=%d divergent_seeds=%d time=%.1fs" % (
        totals["seeds"], totals["commands"], totals["queries"], totals["cli_calls"], failed,
        time.time() - t0))
    sys.exit(1 if failed else 0)


def replay_steps(binary, seed, steps, every, work):
    """Regenerates the step list of a seed (run_seed stops at the divergence)."""
    holder = {}
    orig = Session.submit

    def spy(self, c, mode="apply"):
        holder["s"] = self
        return orig(self, c, mode)
    Session.submit = spy
    try:
        run_seed(binary, seed, steps, every, os.path.join(work, "r"))
    except Divergence:
        pass
    finally:
        Session.submit = orig
    return holder["s"].steps


if __name__ == "__main__":
    main()
