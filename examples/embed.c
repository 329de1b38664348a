/*
 * embed.c — threadlog embedded in a program, through its one public header.
 *
 * What a back office would do: create a log, record an account, its users and a project,
 * exchange messages, mark one read, show the tracking page as the member sees it, prove
 * the log intact, and clean up. Built and run by the tests (ctest: example_embed); any
 * failure exits 1 with the library's error name and detail.
 *
 * Build against an installed library:  cc embed.c $(pkg-config --cflags --libs threadlog)
 */
#define _XOPEN_SOURCE 700 /* mkdtemp, nftw */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "threadlog.h"

/* Stop on any failure, naming it the library's way. */
#define CHECK(call)                                                                              \
    do {                                                                                         \
        int rc_ = (call);                                                                        \
        if (rc_ != 0) {                                                                          \
            fprintf(stderr, "embed: %s failed: %s (%s)\n", #call, tl_strerror(rc_), tl_errdetail()); \
            exit(1);                                                                             \
        }                                                                                        \
    } while (0)

/* Build a command from field/value pairs (NULL-terminated) and run it in its own commit. */
static tl_result run(tl_log *log, const char *op, ...);

#include <stdarg.h>

static tl_result run(tl_log *log, const char *op, ...) {
    tl_cmd *cmd;
    tl_result res;
    CHECK(tl_cmd_new(&cmd, op));
    va_list ap;
    va_start(ap, op);
    for (const char *field; (field = va_arg(ap, const char *)) != NULL;) {
        const char *value = va_arg(ap, const char *);
        if (strcmp(field, "attachments") == 0) CHECK(tl_cmd_add_str(cmd, field, value));
        else CHECK(tl_cmd_set_str(cmd, field, value));
    }
    va_end(ap);
    CHECK(tl_cmd_exec(log, cmd, &res));
    tl_cmd_free(cmd);
    char *json;
    CHECK(tl_result_json(&res, &json));
    printf("%-18s %s\n", op, json);
    tl_free(json);
    return res;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int main(void) {
    const char *tmp = getenv("TMPDIR");
    char base[4096];
    snprintf(base, sizeof base, "%s/threadlog-embed.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(base)) {
        perror("mkdtemp");
        return 1;
    }
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/log", base);

    /* 1. a new log: its writer key is created (mode 0600) and its public key returned */
    tl_init_options init = TL_INIT_OPTIONS_INIT;
    init.max_attachment = 1u << 20;
    char pubkey[TL_PUBKEY_HEX_SIZE];
    CHECK(tl_log_init(dir, &init, pubkey));
    printf("threadlog %s, log %s, writer key %s\n", tl_version(), dir, pubkey);

    tl_log *log;
    CHECK(tl_log_open(&log, dir, NULL));

    /* 2. the operator records an account and its users (no "as": the actor is @operator) */
    run(log, "account.create", "id", "acme", "name", "Acme", NULL);
    run(log, "user.create", "id", "alice", "role", "member", "account", "acme", "name", "Alice", NULL);
    run(log, "user.create", "id", "sam", "role", "staff", "name", "Sam", NULL);
    run(log, "user.create", "id", "zoe", "role", "ambassador", "name", "Zo\xc3\xa9", NULL);

    /* 3. an order whose ambassador wrote at creation: its ambassador channel exists */
    run(log, "project.create", "as", "zoe", "id", "o-1", "account", "acme", "type", "order", "title", "Order #1",
        "ambassador", "zoe", "ambassador_message", "Size M please", NULL);
    tl_result topic = run(log, "topic.create", "as", "alice", "id", "t-1", "project", "o-1", "title", "Shipping",
                          "body", "When does it ship?", NULL);

    /* 4. several commands in one commit (group commit), as `apply` does */
    tl_batch *batch;
    CHECK(tl_batch_begin(log, &batch));
    tl_cmd *cmds[2];
    tl_result res[2];
    CHECK(tl_cmd_new(&cmds[0], "message.send"));
    CHECK(tl_cmd_set_str(cmds[0], "as", "sam"));
    CHECK(tl_cmd_set_str(cmds[0], "id", "m-2"));
    CHECK(tl_cmd_set_str(cmds[0], "project", "o-1"));
    CHECK(tl_cmd_set_str(cmds[0], "channel", "chat"));
    CHECK(tl_cmd_set_str(cmds[0], "topic", "t-1"));
    CHECK(tl_cmd_set_str(cmds[0], "body", "Tomorrow"));
    CHECK(tl_cmd_new(&cmds[1], "attachment.upload"));
    CHECK(tl_cmd_set_str(cmds[1], "as", "alice"));
    CHECK(tl_cmd_set_str(cmds[1], "id", "a-1"));
    CHECK(tl_cmd_set_str(cmds[1], "project", "o-1"));
    CHECK(tl_cmd_set_str(cmds[1], "name", "label.pdf"));
    CHECK(tl_cmd_set_str(cmds[1], "mime", "application/pdf"));
    CHECK(tl_cmd_set_data(cmds[1], "%PDF-1.4\n", 9));
    for (int i = 0; i < 2; i++) tl_batch_exec(batch, cmds[i], &res[i]); /* results are provisional... */
    CHECK(tl_batch_commit(batch));                                       /* ...until this returns 0 */
    for (int i = 0; i < 2; i++) {
        CHECK(res[i].code);
        printf("%-18s batch: seq %llu id %s\n", i ? "attachment.upload" : "message.send",
               (unsigned long long)res[i].seq, res[i].id);
        tl_cmd_free(cmds[i]);
    }

    /* 5. a reply carrying the attachment, reads, and a refusal with its spec error */
    run(log, "message.reply", "as", "alice", "id", "m-3", "message", "m-2", "body", "Thanks",
        "attachments", "a-1", NULL);
    run(log, "message.read", "as", "alice", "message", "m-2", NULL);
    tl_result again = run(log, "message.read", "as", "alice", "message", "m-2", NULL); /* a no-op */
    tl_cmd *bad;
    tl_result refused;
    const char *line = "{\"op\":\"message.delete\",\"as\":\"sam\",\"message\":\"m-2\"}";
    CHECK(tl_cmd_parse(&bad, line, strlen(line), &refused));
    int rc = tl_cmd_exec(log, bad, &refused);
    tl_cmd_free(bad);
    printf("message.delete     refused: %s: %s\n", tl_strerror(rc), refused.message);
    if (rc != TL_EHASREPLIES || !again.noop || strcmp(topic.message_id, "") == 0) {
        fprintf(stderr, "embed: unexpected answers\n");
        return 1;
    }

    /* 6. the tracking page as alice sees it, and her chat messages. A long-running server
     * maps the whole file once at start (tl_log_warm), so that no query pays a page fault
     * for each page it meets first (docs/OPERATIONS.md "Serving queries") */
    uint64_t mapped;
    CHECK(tl_log_warm(log, &mapped));
    tl_query q = TL_QUERY_INIT;
    q.as = "alice";
    char *json;
    CHECK(tl_tracking_query(log, &q, &json));
    printf("tracking as alice: %s\n", json);
    tl_free(json);
    q.project = "o-1";
    q.channel = "chat";
    CHECK(tl_messages_query(log, &q, &json));
    printf("chat of o-1 as alice: %s\n", json);
    tl_free(json);

    /* 7. the attachment back, checked against its commitment */
    uint8_t *bytes;
    size_t len;
    char *name, *mime;
    CHECK(tl_attachment_get(log, "a-1", "sam", &bytes, &len, &name, &mime));
    printf("attachment a-1: %s, %s, %zu bytes\n", name, mime, len);
    tl_free(bytes);
    tl_free(name);
    tl_free(mime);

    /* 8. the log itself: every event from the genesis on, as `threadlog log --json` prints it
     *    (tl_log_follow does the same and then waits for new events, for live updates) */
    tl_iter *it;
    tl_event_view ev;
    CHECK(tl_iter_open(log, 1, &it));
    int shown = 0;
    while ((rc = tl_iter_next(it, &ev)) == 0) {
        if (shown++ < 3) {
            CHECK(tl_event_json(&ev, &json));
            printf("event: %s\n", json);
            tl_free(json);
        }
    }
    tl_iter_close(it); /* views borrow the snapshot: none is used past here */
    if (rc != TL_ENOTFOUND) CHECK(rc);
    printf("%d events in the log\n", shown);

    /* 9. proof that nothing was altered, and a signed checkpoint an auditor keeps to prove
     *    later that the log still extends it */
    char *checkpoint;
    CHECK(tl_log_checkpoint(log, &checkpoint));
    tl_verify_options vo = TL_VERIFY_OPTIONS_INIT;
    vo.checkpoint_json = checkpoint;
    tl_verify_report report;
    CHECK(tl_log_verify(log, &vo, &report));
    printf("verified %llu events, %llu contents, against %s\n", (unsigned long long)report.events,
           (unsigned long long)report.contents, checkpoint);
    tl_free(checkpoint);

    tl_log_close(log);
    if (nftw(base, remove_entry, 8, FTW_DEPTH | FTW_PHYS) != 0) {
        perror("cleanup");
        return 1;
    }
    return 0;
}
