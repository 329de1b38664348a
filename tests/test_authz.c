/*
 * test_authz.c — who may do what, as a matrix: every role × every channel × every action,
 * each cell on a fresh scenario (domain_fixture.h plus a few messages by bob, a member, in
 * every channel), with the expected outcome computed here from SPEC §1's tables — not by
 * asking the engine's own audience function.
 *
 * Roles, as seen from project o-1 of account acme:
 *   member (alice)  other-member (carl, of beta)  staff (sam)
 *   ambassador (zoe: o-1's, whose channel exists, and o-2's, whose channel does not)
 *   other-ambassador (amy, ambassador of o-3 only)  auditor (aud)
 * Channels: notes, chat, ambassador (o-1, exists), ambassador (o-2, does not), support.
 * Actions: send (note.add for notes), topic (chat only), reply, read, mark unread, pin,
 * unpin, delete (someone else's message), delete (one's own), upload (to the channel's
 * project or account), attach (upload, then send with it in the channel), see (fetch an
 * attachment carried by a message of the channel), and per role project.create and
 * project.status. A cell that cannot exist (deleting one's own message where one cannot
 * write; messages in a channel that does not exist) is skipped and not counted.
 *
 * An allowed action must append exactly one event; a refused one must append nothing.
 */
#include "domain_fixture.h"

enum role { MEMBER, OTHER_MEMBER, STAFF, AMBASSADOR, OTHER_AMBASSADOR, AUDITOR, NROLES };
enum col { NOTES, CHAT, AMB, AMB_NONE, SUPPORT, NCOLS };
enum action { SEND, TOPIC, REPLY, READ, UNREAD, PIN, UNPIN, DELETE_OTHER, DELETE_OWN, UPLOAD, ATTACH, SEE, NACTIONS };

static const char *const actor[NROLES] = {"alice", "carl", "sam", "zoe", "amy", "aud"};
static const char *const role_name[NROLES] = {"member", "other-member", "staff", "ambassador", "other-ambassador", "auditor"};
static const char *const col_name[NCOLS] = {"notes", "chat", "ambassador", "ambassador(none)", "support"};
static const char *const action_name[NACTIONS] = {"send", "topic", "reply", "read", "unread", "pin",
                                                  "unpin", "delete-other", "delete-own", "upload", "attach", "see"};

/* bob's messages in each channel: plain, pinned, and carrying an attachment */
static const char *const target[NCOLS] = {"n-1", "m-6", "ab-1", NULL, "sb-1"};
static const char *const pinned[NCOLS] = {"nb-2", "mb-2", "ab-2", NULL, "sb-2"};
static const char *const carried[NCOLS] = {"fb-n", "fb-c", "fb-a", NULL, "fb-s"};

static const fx_line extra[] = {
    {"ab-1", "{\"op\":\"message.send\",\"as\":\"bob\",\"id\":\"ab-1\",\"project\":\"o-1\",\"channel\":\"ambassador\",\"body\":\"from bob\"}"},
    {"sb-1", "{\"op\":\"message.send\",\"as\":\"bob\",\"id\":\"sb-1\",\"account\":\"acme\",\"channel\":\"support\",\"body\":\"from bob\"}"},
    {"nb-2", "{\"op\":\"note.add\",\"as\":\"bob\",\"id\":\"nb-2\",\"project\":\"o-1\",\"body\":\"pinned\"}"},
    {"mb-2", "{\"op\":\"message.send\",\"as\":\"bob\",\"id\":\"mb-2\",\"project\":\"o-1\",\"channel\":\"chat\",\"topic\":\"t-1\",\"body\":\"pinned\"}"},
    {"ab-2", "{\"op\":\"message.send\",\"as\":\"bob\",\"id\":\"ab-2\",\"project\":\"o-1\",\"channel\":\"ambassador\",\"body\":\"pinned\"}"},
    {"sb-2", "{\"op\":\"message.send\",\"as\":\"bob\",\"id\":\"sb-2\",\"account\":\"acme\",\"channel\":\"support\",\"body\":\"pinned\"}"},
    {NULL, "{\"op\":\"message.pin\",\"as\":\"bob\",\"message\":\"nb-2\"}"},
    {NULL, "{\"op\":\"message.pin\",\"as\":\"bob\",\"message\":\"mb-2\"}"},
    {NULL, "{\"op\":\"message.pin\",\"as\":\"bob\",\"message\":\"ab-2\"}"},
    {NULL, "{\"op\":\"message.pin\",\"as\":\"bob\",\"message\":\"sb-2\"}"},
    {"fb-n", "{\"op\":\"attachment.upload\",\"as\":\"bob\",\"id\":\"fb-n\",\"project\":\"o-1\",\"name\":\"n\",\"data\":\"bg==\"}"},
    {"fb-c", "{\"op\":\"attachment.upload\",\"as\":\"bob\",\"id\":\"fb-c\",\"project\":\"o-1\",\"name\":\"c\",\"data\":\"Yw==\"}"},
    {"fb-a", "{\"op\":\"attachment.upload\",\"as\":\"bob\",\"id\":\"fb-a\",\"project\":\"o-1\",\"name\":\"a\",\"data\":\"YQ==\"}"},
    {"fb-s", "{\"op\":\"attachment.upload\",\"as\":\"bob\",\"id\":\"fb-s\",\"account\":\"acme\",\"name\":\"s\",\"data\":\"cw==\"}"},
    {NULL, "{\"op\":\"note.add\",\"as\":\"bob\",\"id\":\"nb-3\",\"project\":\"o-1\",\"body\":\"file\",\"attachments\":[\"fb-n\"]}"},
    {NULL, "{\"op\":\"message.send\",\"as\":\"bob\",\"id\":\"mb-3\",\"project\":\"o-1\",\"channel\":\"chat\",\"topic\":\"t-1\",\"body\":\"file\",\"attachments\":[\"fb-c\"]}"},
    {NULL, "{\"op\":\"message.send\",\"as\":\"bob\",\"id\":\"ab-3\",\"project\":\"o-1\",\"channel\":\"ambassador\",\"body\":\"file\",\"attachments\":[\"fb-a\"]}"},
    {NULL, "{\"op\":\"message.send\",\"as\":\"bob\",\"id\":\"sb-3\",\"account\":\"acme\",\"channel\":\"support\",\"body\":\"file\",\"attachments\":[\"fb-s\"]}"},
};

/* ---------------------------------------------------------------- the model (SPEC §1) */

/* Is the role in the channel's audience ("who may read and write")? Auditors read all but
 * are answered separately: they never act. */
static bool in_audience(enum role r, enum col c) {
    switch (c) {
    case NOTES: return r == MEMBER;                         /* the account's members */
    case CHAT: return r == MEMBER || r == STAFF;            /* + all staff */
    case AMB:
    case AMB_NONE: return r == MEMBER || r == AMBASSADOR;   /* + the project's ambassador */
    case SUPPORT: return r == MEMBER || r == STAFF;         /* the account's members + staff */
    default: return false;
    }
}

static bool channel_exists(enum col c) { return c != AMB_NONE; }

static bool may_write(enum role r, enum col c) { return r != AUDITOR && in_audience(r, c) && channel_exists(c); }

/* Uploads: anyone who may write in some channel of the project (or the support conversation). */
static bool may_upload(enum role r, enum col c) {
    if (c == SUPPORT) return may_write(r, SUPPORT);
    if (c == AMB_NONE) return may_write(r, NOTES) || may_write(r, CHAT); /* o-2: no ambassador channel */
    return may_write(r, NOTES) || may_write(r, CHAT) || may_write(r, AMB);
}

/* The code of a write-like action on an existing message, or of a send. */
static int write_outcome(enum role r, enum col c) {
    if (r == AUDITOR || !in_audience(r, c)) return TL_EFORBIDDEN;
    if (!channel_exists(c)) return TL_ECHANNEL;
    return 0;
}

static bool applicable(enum role r, enum col c, enum action a) {
    if (a == TOPIC) return c == CHAT;
    if (a == DELETE_OWN) return may_write(r, c);
    if (a == ATTACH) return may_upload(r, c);
    if (c == AMB_NONE) return a == SEND || a == UPLOAD; /* there are no messages */
    return true;
}

static int expected(enum role r, enum col c, enum action a) {
    switch (a) {
    case SEE: return r == AUDITOR || in_audience(r, c) ? 0 : TL_EFORBIDDEN;
    case UPLOAD: return may_upload(r, c) ? 0 : TL_EFORBIDDEN;
    case DELETE_OTHER: return TL_EFORBIDDEN; /* the author alone, whoever else asks */
    default: return write_outcome(r, c);
    }
}

/* ---------------------------------------------------------------- commands */

/* The JSON of a new message by `as` in column c, with `more` appended inside the object. */
static void send_json(char *out, size_t cap, const char *as, enum col c, const char *more) {
    switch (c) {
    case NOTES: snprintf(out, cap, "{\"op\":\"note.add\",\"as\":\"%s\",\"project\":\"o-1\",\"body\":\"x\"%s}", as, more); break;
    case CHAT:
        snprintf(out, cap, "{\"op\":\"message.send\",\"as\":\"%s\",\"project\":\"o-1\",\"channel\":\"chat\",\"topic\":\"t-1\",\"body\":\"x\"%s}", as, more);
        break;
    case AMB:
    case AMB_NONE:
        snprintf(out, cap, "{\"op\":\"message.send\",\"as\":\"%s\",\"project\":\"%s\",\"channel\":\"ambassador\",\"body\":\"x\"%s}", as,
                 c == AMB ? "o-1" : "o-2", more);
        break;
    default:
        snprintf(out, cap, "{\"op\":\"message.send\",\"as\":\"%s\",\"account\":\"acme\",\"channel\":\"support\",\"body\":\"x\"%s}", as, more);
    }
}

static void upload_json(char *out, size_t cap, const char *as, enum col c, const char *id) {
    const char *where = c == SUPPORT ? "\"account\":\"acme\"" : c == AMB_NONE ? "\"project\":\"o-2\"" : "\"project\":\"o-1\"";
    snprintf(out, cap, "{\"op\":\"attachment.upload\",\"as\":\"%s\",%s,\"name\":\"up.bin\",\"data\":\"dXA=\"%s%s%s}", as, where,
             id ? ",\"id\":\"" : "", id ? id : "", id ? "\"" : "");
}

static void on_message(char *out, size_t cap, const char *op, const char *as, const char *msg) {
    snprintf(out, cap, "{\"op\":\"message.%s\",\"as\":\"%s\",\"message\":\"%s\"}", op, as, msg);
}

/* ---------------------------------------------------------------- the cells */

static int cells_run;

static void run_cell(enum role r, enum col c, enum action a) {
    fx f;
    fx_scenario(&f); /* the cast and `extra` (see main) */
    const char *as = actor[r];
    char cmd[512];
    int want = expected(r, c, a);
    /* setup the cell needs, done as bob or as the actor where the model allows it */
    switch (a) {
    case SEND: send_json(cmd, sizeof cmd, as, c, ""); break;
    case TOPIC:
        snprintf(cmd, sizeof cmd, "{\"op\":\"topic.create\",\"as\":\"%s\",\"project\":\"o-1\",\"title\":\"T\",\"body\":\"x\"}", as);
        break;
    case REPLY: snprintf(cmd, sizeof cmd, "{\"op\":\"message.reply\",\"as\":\"%s\",\"message\":\"%s\",\"body\":\"x\"}", as, target[c]); break;
    case READ: on_message(cmd, sizeof cmd, "read", as, target[c]); break;
    case UNREAD:
        if (want == 0) { /* mark unread what one has read (else it is a no-op) */
            on_message(cmd, sizeof cmd, "read", as, target[c]);
            fx_ok(&f, cmd);
        }
        on_message(cmd, sizeof cmd, "unread", as, target[c]);
        break;
    case PIN: on_message(cmd, sizeof cmd, "pin", as, target[c]); break;
    case UNPIN: on_message(cmd, sizeof cmd, "unpin", as, pinned[c]); break;
    case DELETE_OTHER: on_message(cmd, sizeof cmd, "delete", as, target[c]); break;
    case DELETE_OWN:
        send_json(cmd, sizeof cmd, as, c, ",\"id\":\"own-1\"");
        fx_ok(&f, cmd);
        on_message(cmd, sizeof cmd, "delete", as, "own-1");
        break;
    case UPLOAD: upload_json(cmd, sizeof cmd, as, c, NULL); break;
    case ATTACH:
        upload_json(cmd, sizeof cmd, as, c, "up-1");
        fx_ok(&f, cmd);
        send_json(cmd, sizeof cmd, as, c, ",\"attachments\":[\"up-1\"]");
        break;
    case SEE: break;
    default: ck_abort();
    }
    uint64_t before = fx_events(&f);
    tl_result res;
    memset(&res, 0, sizeof res);
    int rc;
    if (a == SEE) {
        uint8_t *bytes = NULL;
        size_t len;
        rc = tl_attachment_get(f.log, carried[c], as, &bytes, &len, NULL, NULL);
        tl_free(bytes);
        snprintf(res.message, sizeof res.message, "%s", tl_errdetail());
    } else {
        rc = fx_cmd(&f, cmd, &res);
    }
    uint64_t after = fx_events(&f);
    ck_assert_msg(rc == want, "%s × %s × %s: want %s, got %s (%s)", role_name[r], col_name[c], action_name[a],
                  tl_strerror(want), tl_strerror(rc), res.message);
    if (a != SEE) {
        uint64_t grew = want == 0 ? 1 : 0;
        ck_assert_msg(!res.noop, "%s × %s × %s: a no-op", role_name[r], col_name[c], action_name[a]);
        ck_assert_msg(after == before + grew, "%s × %s × %s: the log grew by %llu", role_name[r], col_name[c],
                      action_name[a], (unsigned long long)(after - before));
    } else {
        ck_assert_uint_eq(after, before);
    }
    fx_close(&f);
}

START_TEST(matrix_cell) {
    int i = _i;
    enum action a = (enum action)(i % NACTIONS);
    enum col c = (enum col)(i / NACTIONS % NCOLS);
    enum role r = (enum role)(i / NACTIONS / NCOLS);
    if (!applicable(r, c, a)) return;
    run_cell(r, c, a);
}
END_TEST

/* Project-level actions: creating a project of acme (naming zoe as its ambassador) and
 * changing o-1's status. */
START_TEST(project_actions) {
    enum role r = (enum role)_i;
    static const bool may_create[NROLES] = {true, false, true, true, false, false};
    static const bool may_status[NROLES] = {true, false, true, false, false, false};
    for (int what = 0; what < 2; what++) {
        fx f;
        fx_scenario(&f);
        char cmd[512];
        if (what == 0)
            snprintf(cmd, sizeof cmd,
                     "{\"op\":\"project.create\",\"as\":\"%s\",\"id\":\"p-new\",\"account\":\"acme\",\"type\":\"order\","
                     "\"title\":\"T\",\"ambassador\":\"zoe\",\"ambassador_message\":\"hello\"}",
                     actor[r]);
        else
            snprintf(cmd, sizeof cmd, "{\"op\":\"project.status\",\"as\":\"%s\",\"project\":\"o-1\",\"status\":\"accepted\"}", actor[r]);
        int want = (what == 0 ? may_create[r] : may_status[r]) ? 0 : TL_EFORBIDDEN;
        uint64_t before = fx_events(&f);
        tl_result res;
        int rc = fx_cmd(&f, cmd, &res);
        ck_assert_msg(rc == want, "%s × %s: want %s, got %s (%s)", role_name[r], what ? "project.status" : "project.create",
                      tl_strerror(want), tl_strerror(rc), res.message);
        ck_assert_uint_eq(fx_events(&f), before + (want == 0));
        fx_close(&f);
    }
}
END_TEST

/* The content of a deleted message is the auditors' alone: fetching an attachment it carried
 * is `deleted` for its audience (the author included), still `forbidden` outside it. */
START_TEST(see_attachment_of_deleted_message) {
    enum role r = (enum role)_i;
    fx f;
    fx_scenario(&f);
    fx_ok(&f, "{\"op\":\"message.delete\",\"as\":\"bob\",\"message\":\"mb-3\"}");
    int want = r == AUDITOR ? 0 : in_audience(r, CHAT) ? TL_EDELETED : TL_EFORBIDDEN;
    uint8_t *bytes = NULL;
    size_t len;
    int rc = tl_attachment_get(f.log, "fb-c", actor[r], &bytes, &len, NULL, NULL);
    ck_assert_msg(rc == want, "%s: want %s, got %s (%s)", role_name[r], tl_strerror(want), tl_strerror(rc), tl_errdetail());
    tl_free(bytes);
    ck_assert_int_eq(tl_attachment_get(f.log, "fb-c", "bob", &bytes, &len, NULL, NULL), TL_EDELETED);
    fx_close(&f);
}
END_TEST

/* A refusal's message names nothing outside the caller's audience: alice (acme) naming beta's
 * topic t-2 learns it belongs elsewhere (invalid_input, as the spec says), not which project. */
START_TEST(a_refusal_names_no_project_outside_the_audience) {
    fx f;
    fx_scenario(&f);
    uint64_t before = fx_events(&f);
    tl_result res;
    int rc = fx_cmd(&f, "{\"op\":\"message.send\",\"as\":\"alice\",\"project\":\"o-1\",\"channel\":\"chat\","
                        "\"topic\":\"t-2\",\"body\":\"x\"}", &res);
    ck_assert_int_eq(rc ? rc : res.code, TL_EINVALID);
    ck_assert_msg(strstr(res.message, "t-2") && !strstr(res.message, "b-1"), "message: %s", res.message);
    ck_assert_uint_eq(fx_events(&f), before);
    fx_close(&f);
}
END_TEST

/* The model's own sanity, so a typo in it cannot hide an engine bug: the spec's sentences. */
START_TEST(model_matches_the_spec_sentences) {
    for (int c = 0; c < NCOLS; c++) {
        ck_assert(!in_audience(OTHER_MEMBER, c));           /* another account: refused everywhere */
        ck_assert(!may_write(AUDITOR, c));                  /* auditors never act */
        ck_assert(!in_audience(OTHER_AMBASSADOR, c));       /* not their project */
    }
    ck_assert(!in_audience(STAFF, NOTES));                  /* staff never see internal notes */
    ck_assert(in_audience(AMBASSADOR, AMB) && !in_audience(AMBASSADOR, CHAT) && !in_audience(AMBASSADOR, NOTES) &&
              !in_audience(AMBASSADOR, SUPPORT));           /* only their projects' ambassador channel */
    ck_assert_int_eq(write_outcome(MEMBER, AMB_NONE), TL_ECHANNEL);
    cells_run = 0;
    for (int r = 0; r < NROLES; r++)
        for (int c = 0; c < NCOLS; c++)
            for (int a = 0; a < NACTIONS; a++) cells_run += applicable(r, c, a);
    fprintf(stderr, "test_authz: %d matrix cells + %d project-level cells\n", cells_run, 2 * NROLES);
    /* of the 6 x 5 x 12 = 360 cells, those the model calls not applicable (e.g. topics
     * outside chat) are skipped: a slip in the model that skipped more would test less
     * without failing, so the count is pinned */
    ck_assert_int_eq(cells_run, 254);
}
END_TEST

static void template_up(void) { fx_template(extra, sizeof extra / sizeof extra[0]); }

int main(void) {
    Suite *s = suite_create("authz");
    TCase *tc = tcase_create("matrix");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, model_matches_the_spec_sentences);
    tcase_add_loop_test(tc, matrix_cell, 0, NROLES * NCOLS * NACTIONS);
    tcase_add_loop_test(tc, project_actions, 0, NROLES);
    tcase_add_loop_test(tc, see_attachment_of_deleted_message, 0, NROLES);
    tcase_add_test(tc, a_refusal_names_no_project_outside_the_audience);
    tcase_add_unchecked_fixture(tc, template_up, fx_template_remove);
    suite_add_tcase(s, tc);
    return tu_main(s);
}
