/*
 * rules_messages.c — the commands of conversations: topics (with their first message),
 * messages to the chat, ambassador and support channels, internal notes, replies, and what
 * users do to a message (read, mark unread, pin, unpin, delete).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "rules.h"

/* A new message: topic.create's first message, message.send, note.add, message.reply. */
static int new_message(rctx *c, tl_result *res, const char *kind, const char *project, const char *account,
                       const char *channel, const char *topic, const char *parent) {
    char id[TL_IDBUF];
    if (rules_present(c, "id")) snprintf(id, sizeof id, "%s", rules_str(c, "id"));
    else if (rules_generate_id(c, id, "m", 'm')) return tl_result_fail(res, c->err, "%s", c->msg);
    body_ref body;
    if (rules_store_body(c, "body", &body)) return tl_result_fail(res, TL_ESTORAGE, "%s", tl_errdetail());
    size_t n;
    const char **att = rules_attachment_list(c, &n);
    tl_payload p = {0};
    tl_payload_str(&p, "id", id);
    if (strcmp(kind, "note.added") != 0) tl_payload_str(&p, "channel", channel);
    tl_payload_str(&p, "topic", topic);
    tl_payload_str(&p, "parent", parent);
    if (!project) tl_payload_str(&p, "account", account);
    tl_payload_bin(&p, "body_commit", body.commit, TL_HASH_BYTES);
    tl_payload_uint(&p, "body_size", body.size);
    if (att) tl_payload_strlist(&p, "attachments", att, n);
    snprintf(res->id, sizeof res->id, "%s", id);
    return rules_append(c, kind, project, &p, body.salt, true, res);
}


int rules_topic(rctx *c, tl_result *res) {
    tl_project_rec p;
    rules_load_actor(c);
    const char *project = rules_str(c, "project");
    bool have = rules_load_project(c, project, &p);
    rules_check_new_id(c, "id", 't');
    rules_check_new_id(c, "message_id", 'm');
    if (have) {
        rules_check_audience(c, &p, NULL, TL_CH_CHAT);
        rules_check_expect(c, &p);
    }
    rules_check_attachments(c, have ? project : NULL, NULL);
    if (c->err) return tl_result_fail(res, c->err, "%s", c->msg);
    char tid[TL_IDBUF], mid[TL_IDBUF];
    if (rules_present(c, "id")) snprintf(tid, sizeof tid, "%s", rules_str(c, "id"));
    else if (rules_generate_id(c, tid, "t", 't')) return tl_result_fail(res, c->err, "%s", c->msg);
    if (rules_present(c, "message_id")) snprintf(mid, sizeof mid, "%s", rules_str(c, "message_id"));
    else if (rules_generate_id(c, mid, "m", 'm')) return tl_result_fail(res, c->err, "%s", c->msg);
    body_ref body;
    if (rules_store_body(c, "body", &body)) return tl_result_fail(res, TL_ESTORAGE, "%s", tl_errdetail());
    size_t n;
    const char **att = rules_attachment_list(c, &n);
    tl_payload pl = {0};
    tl_payload_str(&pl, "id", tid);
    tl_payload_str(&pl, "title", rules_str(c, "title"));
    tl_payload_str(&pl, "message_id", mid);
    tl_payload_bin(&pl, "body_commit", body.commit, TL_HASH_BYTES);
    tl_payload_uint(&pl, "body_size", body.size);
    if (att) tl_payload_strlist(&pl, "attachments", att, n);
    snprintf(res->id, sizeof res->id, "%s", tid);
    snprintf(res->message_id, sizeof res->message_id, "%s", mid);
    return rules_append(c, "topic.created", project, &pl, body.salt, true, res);
}


int rules_send(rctx *c, tl_result *res) {
    const char *channel = rules_str(c, "channel"), *project = rules_str(c, "project"), *topic = rules_str(c, "topic");
    const char *account = rules_str(c, "account");
    int ch = tl_channel_parse(channel);
    if (channel && (!ch || ch == TL_CH_NOTES))
        rules_violate(c, TL_EINVALID, ch == TL_CH_NOTES ? "internal notes are written with note.add"
                                                  : "channel must be chat, ambassador or support");
    if (ch == TL_CH_SUPPORT) {
        if (rules_present(c, "project")) rules_violate(c, TL_EINVALID, "unknown field \"project\" for a support message");
        if (rules_present(c, "topic")) rules_violate(c, TL_EINVALID, "a topic on the support conversation");
        if (!rules_present(c, "account")) rules_violate(c, TL_EINVALID, "account is required for a support message");
        if (rules_present(c, "expect")) rules_violate(c, TL_EINVALID, "expect names a project; support messages have none");
    } else if (ch) {
        if (rules_present(c, "account")) rules_violate(c, TL_EINVALID, "unknown field \"account\" for a project message");
        if (!rules_present(c, "project")) rules_violate(c, TL_EINVALID, "project is required for a %s message", channel);
        if (ch == TL_CH_CHAT && !rules_present(c, "topic")) rules_violate(c, TL_EINVALID, "a chat message needs a topic");
        if (ch != TL_CH_CHAT && rules_present(c, "topic")) rules_violate(c, TL_EINVALID, "a topic on the %s channel", channel);
    }
    rules_load_actor(c);
    rules_check_new_id(c, "id", 'm');
    tl_project_rec p;
    bool have = false;
    if (ch == TL_CH_SUPPORT) {
        tl_account_rec a;
        bool known = false;
        if (account && tl_id_valid(account)) {
            if (tl_state_account(c->txn, c->log, account, &a) == TL_ENOTFOUND) rules_violate(c, TL_ENOTFOUND, "unknown account %s", account);
            else { rules_check_audience(c, NULL, account, TL_CH_SUPPORT); known = true; }
        }
        rules_check_attachments(c, NULL, known ? account : NULL);
    } else if (ch) {
        have = rules_load_project(c, project, &p);
        /* "a topic of another project" needs a project: with an unknown one, the
         * answer is its not_found (and the topic's, if unknown too) */
        if (have && ch == TL_CH_CHAT && topic && tl_id_valid(topic)) {
            tl_topic_rec t;
            int rc = tl_state_topic(c->txn, c->log, topic, &t);
            if (rc == TL_ENOTFOUND) rules_violate(c, TL_ENOTFOUND, "unknown topic %s", topic);
            else if (rc) rules_violate(c, rc, "%s", tl_errdetail());
            else if (strcmp(t.project, project) != 0)
                /* not naming it: the caller may be outside that project's audience */
                rules_violate(c, TL_EINVALID, "topic %s belongs to another project", topic);
        }
        if (have) {
            rules_check_audience(c, &p, NULL, ch);
            rules_check_expect(c, &p);
            if (ch == TL_CH_AMBASSADOR && !p.ambassador_channel)
                rules_violate(c, TL_ECHANNEL, "project %s has no ambassador channel (its ambassador wrote nothing at creation)", project);
        }
        rules_check_attachments(c, have ? project : NULL, NULL);
    }
    if (c->err) return tl_result_fail(res, c->err, "%s", c->msg);
    return new_message(c, res, "message.sent", ch == TL_CH_SUPPORT ? NULL : project, account, channel,
                       ch == TL_CH_CHAT ? topic : NULL, NULL);
}


int rules_note(rctx *c, tl_result *res) {
    tl_project_rec p;
    rules_load_actor(c);
    const char *project = rules_str(c, "project");
    bool have = rules_load_project(c, project, &p);
    rules_check_new_id(c, "id", 'm');
    if (have) {
        rules_check_audience(c, &p, NULL, TL_CH_NOTES);
        rules_check_expect(c, &p);
    }
    rules_check_attachments(c, have ? project : NULL, NULL);
    if (c->err) return tl_result_fail(res, c->err, "%s", c->msg);
    return new_message(c, res, "note.added", project, NULL, "notes", NULL, NULL);
}

/* Loads the message named by "message" and its project; checks audience/expect/deleted. */
static bool on_message(rctx *c, tl_message_rec *m, tl_project_rec *p, bool *has_project) {
    rules_load_actor(c);
    *has_project = false;
    if (!rules_load_message(c, rules_str(c, "message"), m)) return false;
    if (m->project[0]) {
        if (tl_wstate_project(c->w, m->project, p) != 0) {
            rules_violate(c, TL_ECORRUPT, "message %s names a missing project", rules_str(c, "message"));
            return false;
        }
        *has_project = true;
    } else if (rules_present(c, "expect")) {
        rules_violate(c, TL_EINVALID, "expect names a project; support messages have none");
    }
    rules_check_audience(c, *has_project ? p : NULL, m->account, m->channel);
    if (*has_project) rules_check_expect(c, p);
    if (m->deleted) rules_violate(c, TL_EDELETED, "message %s is deleted", rules_str(c, "message"));
    return true;
}


int rules_reply(rctx *c, tl_result *res) {
    tl_message_rec m;
    tl_project_rec p;
    bool hp;
    bool have = on_message(c, &m, &p, &hp);
    rules_check_new_id(c, "id", 'm');
    rules_check_attachments(c, have && hp ? m.project : NULL, have ? m.account : NULL);
    if (c->err) return tl_result_fail(res, c->err, "%s", c->msg);
    return new_message(c, res, "message.replied", hp ? m.project : NULL, m.account, tl_channel_name(m.channel),
                       m.topic[0] ? m.topic : NULL, rules_str(c, "message"));
}


int rules_message_flag(rctx *c, tl_result *res) {
    tl_message_rec m;
    tl_project_rec p;
    bool hp;
    const char *op = c->op, *id = rules_str(c, "message");
    bool have = on_message(c, &m, &p, &hp);
    const char *kind = NULL;
    bool noop = false;
    if (!strcmp(op, "message.delete")) {
        kind = "message.deleted";
        if (have && c->user_ok && c->user.role != TL_ROLE_AUDITOR && strcmp(m.author, c->as) != 0)
            rules_violate(c, TL_EFORBIDDEN, "only its author (%s) may delete message %s", m.author, id);
        char reply[TL_IDBUF];
        if (have && !m.deleted && tl_state_live_reply(c->txn, c->log, id, reply) == 0)
            rules_violate(c, TL_EHASREPLIES, "%s has a reply (%s) and cannot be deleted", id, reply);
    } else if (!strcmp(op, "message.pin")) {
        kind = "message.pinned";
        if (have && m.pinned) rules_violate(c, TL_EPINNED, "message %s is already pinned", id);
    } else if (!strcmp(op, "message.unpin")) {
        kind = "message.unpinned";
        if (have && !m.pinned) rules_violate(c, TL_ENOTPINNED, "message %s is not pinned", id);
    } else if (!strcmp(op, "message.read")) {
        kind = "message.read";
        noop = have && c->as && (strcmp(m.author, c->as) == 0 || tl_state_has_read(c->txn, c->log, c->as, id));
    } else {
        kind = "message.unread";
        noop = have && c->as && (strcmp(m.author, c->as) == 0 || !tl_state_has_read(c->txn, c->log, c->as, id));
    }
    if (c->err) return tl_result_fail(res, c->err, "%s", c->msg);
    if (noop) {
        res->noop = 1;
        return 0;
    }
    tl_payload pl = {0};
    tl_payload_str(&pl, "message", id);
    if (!hp) tl_payload_str(&pl, "account", m.account);
    return rules_append(c, kind, hp ? m.project : NULL, &pl, NULL, false, res);
}
