/*
 * rules_catalog.c — the commands that make the catalog: accounts and users (the operator's),
 * projects and their statuses, and attachment uploads. Each checks every rule that applies
 * through the collector of rules.c, then appends its event or nothing.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "rules.h"

int rules_account(rctx *c, tl_result *res) {
    rules_check_new_id(c, "id", 'a');
    if (c->err) return tl_result_fail(res, c->err, "%s", c->msg);
    tl_payload p = {0};
    tl_payload_str(&p, "id", rules_str(c, "id"));
    tl_payload_str(&p, "name", rules_str(c, "name"));
    snprintf(res->id, sizeof res->id, "%s", rules_str(c, "id"));
    return rules_append(c, "account.created", NULL, &p, NULL, true, res);
}


int rules_user(rctx *c, tl_result *res) {
    const char *role = rules_str(c, "role"), *account = rules_str(c, "account");
    int r = tl_role_parse(role);
    if (role && !r) rules_violate(c, TL_EINVALID, "role must be member, staff, ambassador or auditor");
    if (r == TL_ROLE_MEMBER && !rules_present(c, "account")) rules_violate(c, TL_EINVALID, "account is required for a member");
    if (r && r != TL_ROLE_MEMBER && rules_present(c, "account")) rules_violate(c, TL_EINVALID, "unknown field \"account\" for a %s", role);
    tl_account_rec a;
    if (r == TL_ROLE_MEMBER && account && tl_id_valid(account) && tl_state_account(c->txn, c->log, account, &a) == TL_ENOTFOUND)
        rules_violate(c, TL_ENOTFOUND, "unknown account %s", account);
    rules_check_new_id(c, "id", 'u');
    if (c->err) return tl_result_fail(res, c->err, "%s", c->msg);
    tl_payload p = {0};
    tl_payload_str(&p, "id", rules_str(c, "id"));
    tl_payload_str(&p, "role", role);
    tl_payload_str(&p, "name", rules_str(c, "name"));
    if (r == TL_ROLE_MEMBER) tl_payload_str(&p, "account", account);
    snprintf(res->id, sizeof res->id, "%s", rules_str(c, "id"));
    return rules_append(c, "user.created", NULL, &p, NULL, true, res);
}


int rules_project(rctx *c, tl_result *res) {
    const char *id = rules_str(c, "id"), *account = rules_str(c, "account"), *type = rules_str(c, "type");
    const char *amb = rules_str(c, "ambassador"), *amb_msg = rules_str(c, "ambassador_message");
    int t = tl_ptype_parse(type);
    if (type && !t) rules_violate(c, TL_EINVALID, "type must be application, order or video");
    if (rules_present(c, "ambassador_message_id") && !rules_present(c, "ambassador_message"))
        rules_violate(c, TL_EINVALID, "unknown field \"ambassador_message_id\" without ambassador_message");
    if (rules_present(c, "ambassador_message") && (t != TL_TYPE_ORDER || !rules_present(c, "ambassador")))
        rules_violate(c, TL_EINVALID, "ambassador_message is only for an order that names its ambassador");
    rules_load_actor(c);
    tl_account_rec a;
    if (account && tl_id_valid(account) && tl_state_account(c->txn, c->log, account, &a) == TL_ENOTFOUND)
        rules_violate(c, TL_ENOTFOUND, "unknown account %s", account);
    tl_user_rec amb_user;
    if (amb && tl_id_valid(amb)) {
        int rc = tl_state_user(c->txn, c->log, amb, &amb_user);
        if (rc == TL_ENOTFOUND) rules_violate(c, TL_ENOTFOUND, "unknown user %s", amb);
        else if (!rc && amb_user.role != TL_ROLE_AMBASSADOR) rules_violate(c, TL_EINVALID, "%s is not an ambassador", amb);
    }
    rules_check_new_id(c, "id", 'p');
    if (amb_msg) rules_check_new_id(c, "ambassador_message_id", 'm');
    if (c->user_ok && c->user.role != TL_ROLE_AUDITOR) {
        bool member = c->user.role == TL_ROLE_MEMBER && account && strcmp(c->user.account, account) == 0;
        bool ambassador = c->user.role == TL_ROLE_AMBASSADOR && amb && strcmp(amb, c->as) == 0;
        if (!member && c->user.role != TL_ROLE_STAFF && !ambassador)
            rules_violate(c, TL_EFORBIDDEN, "%s may not create a project of account %s", c->as, account ? account : "?");
    }
    if (c->has_expect && c->expect != 0) rules_violate(c, TL_ECONFLICT, "a new project is at version 0");
    if (c->err) return tl_result_fail(res, c->err, "%s", c->msg);

    char msg_id[TL_IDBUF] = "";
    body_ref body;
    tl_payload p = {0};
    tl_payload_str(&p, "id", id);
    tl_payload_str(&p, "account", account);
    tl_payload_str(&p, "type", type);
    tl_payload_str(&p, "title", rules_str(c, "title"));
    tl_payload_str(&p, "status", rules_present(c, "status") ? rules_str(c, "status") : "new");
    tl_payload_str(&p, "ambassador", amb);
    if (amb_msg) {
        if (rules_present(c, "ambassador_message_id")) snprintf(msg_id, sizeof msg_id, "%s", rules_str(c, "ambassador_message_id"));
        else if (rules_generate_id(c, msg_id, "m", 'm')) return tl_result_fail(res, c->err, "%s", c->msg);
        if (rules_store_body(c, "ambassador_message", &body)) return tl_result_fail(res, TL_ESTORAGE, "%s", tl_errdetail());
        tl_payload_str(&p, "ambassador_message_id", msg_id);
        tl_payload_bin(&p, "body_commit", body.commit, TL_HASH_BYTES);
        tl_payload_uint(&p, "body_size", body.size);
    }
    snprintf(res->id, sizeof res->id, "%s", id);
    return rules_append(c, "project.created", id, &p, amb_msg ? body.salt : NULL, true, res);
}


int rules_status(rctx *c, tl_result *res) {
    tl_project_rec p;
    rules_load_actor(c);
    bool have = rules_load_project(c, rules_str(c, "project"), &p);
    if (have && c->user_ok && c->user.role != TL_ROLE_AUDITOR) {
        bool member = c->user.role == TL_ROLE_MEMBER && strcmp(c->user.account, p.account) == 0;
        if (!member && c->user.role != TL_ROLE_STAFF)
            rules_violate(c, TL_EFORBIDDEN, "%s may not change the status of project %s", c->as, rules_str(c, "project"));
    }
    if (have) rules_check_expect(c, &p);
    if (c->err) return tl_result_fail(res, c->err, "%s", c->msg);
    if (strcmp(p.status, rules_str(c, "status")) == 0) {
        res->noop = 1;
        return 0;
    }
    tl_payload pl = {0};
    tl_payload_str(&pl, "status", rules_str(c, "status"));
    tl_payload_str(&pl, "previous", p.status);
    return rules_append(c, "project.status_changed", rules_str(c, "project"), &pl, NULL, false, res);
}


int rules_upload(rctx *c, tl_result *res) {
    const char *project = rules_str(c, "project"), *account = rules_str(c, "account"), *data = rules_str(c, "data");
    if (rules_present(c, "project") == rules_present(c, "account"))
        rules_violate(c, TL_EINVALID, "an upload names exactly one of project or account (support)");
    if (rules_present(c, "account") && rules_present(c, "expect"))
        rules_violate(c, TL_EINVALID, "expect names a project; support uploads have none");
    if (c->cmd->data_unread) {
        if (c->cmd->data_unread_size > c->log->max_attachment)
            rules_violate(c, TL_ETOOLARGE, "attachment of %llu bytes is over the log's limit of %llu",
                          (unsigned long long)c->cmd->data_unread_size, (unsigned long long)c->log->max_attachment);
        else
            rules_violate(c, TL_EINVALID, "the attachment's bytes were not given, only its size");
    } else if (data) {
        size_t n = strlen(data), cap = n / 4 * 3 + 3;
        const char *end = NULL;
        c->data = malloc(cap ? cap : 1);
        if (!c->data) return tl_result_fail(res, TL_ENOMEM, "out of memory");
        if (n % 4 != 0 || sodium_base642bin(c->data, cap, data, n, NULL, &c->data_len, &end, sodium_base64_VARIANT_ORIGINAL) != 0 ||
            end != data + n)
            rules_violate(c, TL_EINVALID, "data is not standard base64 with padding");
        else if (c->data_len > c->log->max_attachment)
            rules_violate(c, TL_ETOOLARGE, "attachment of %zu bytes is over the log's limit of %llu", c->data_len,
                    (unsigned long long)c->log->max_attachment);
    }
    rules_load_actor(c);
    rules_check_new_id(c, "id", 'f');
    tl_project_rec p;
    if (project && !account) {
        if (rules_load_project(c, project, &p) && c->user_ok && c->user.role != TL_ROLE_AUDITOR) {
            bool may = false;
            for (int ch = TL_CH_NOTES; ch <= TL_CH_AMBASSADOR; ch++)
                if (tl_state_in_audience(c->as, &c->user, &p, p.account, ch) && (ch != TL_CH_AMBASSADOR || p.ambassador_channel))
                    may = true;
            if (!may) rules_violate(c, TL_EFORBIDDEN, "%s may not write in project %s, so may not upload to it", c->as, project);
            rules_check_expect(c, &p);
        }
    } else if (account && !project && tl_id_valid(account)) {
        tl_account_rec a;
        if (tl_state_account(c->txn, c->log, account, &a) == TL_ENOTFOUND) rules_violate(c, TL_ENOTFOUND, "unknown account %s", account);
        else rules_check_audience(c, NULL, account, TL_CH_SUPPORT);
    }
    if (c->err) return tl_result_fail(res, c->err, "%s", c->msg);
    char id[TL_IDBUF];
    if (rules_present(c, "id")) snprintf(id, sizeof id, "%s", rules_str(c, "id"));
    else if (rules_generate_id(c, id, "a", 'f')) return tl_result_fail(res, c->err, "%s", c->msg);
    uint8_t commit[TL_HASH_BYTES], salt[TL_SALT_BYTES];
    if (tl_content_put(c->w, c->data, c->data_len, commit, salt)) return tl_result_fail(res, TL_ESTORAGE, "%s", tl_errdetail());
    tl_payload pl = {0};
    tl_payload_str(&pl, "id", id);
    tl_payload_str(&pl, "name", rules_str(c, "name"));
    tl_payload_str(&pl, "mime", rules_present(c, "mime") ? rules_str(c, "mime") : "application/octet-stream");
    tl_payload_bin(&pl, "data_commit", commit, TL_HASH_BYTES);
    tl_payload_uint(&pl, "data_size", c->data_len);
    if (!project) tl_payload_str(&pl, "account", account);
    snprintf(res->id, sizeof res->id, "%s", id);
    return rules_append(c, "attachment.uploaded", project, &pl, salt, true, res);
}
