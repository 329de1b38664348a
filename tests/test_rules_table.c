/*
 * test_rules_table.c — every rule of SPEC §1 and every "Settled details" rule that a single
 * command can break, as a table: one row per rule (and per variant worth telling apart),
 * each run on a fresh copy of the common scenario (domain_fixture.h) as one JSON line.
 *
 * A row says what must happen: refused with a given code, a no-op, a duplicate of a
 * scenario command (with its original seq), or accepted (appending exactly one event).
 * For everything but acceptance, the log must not grow: the head seq before == after.
 * The result's JSON line is checked against the spec's shapes too.
 *
 * Then: all the refusals at once in one batch (group commit must not change any answer,
 * and the log must not grow). The rules' other suites: test_rules_ids (retries, erasure by
 * id, generated ids), test_rules_api (the builder, declared sizes, another jansson
 * allocator, concurrent callers), test_rules_events (support conversations, payloads).
 *
 * Rows are written with ' for " (rules_fixture.h's dq); see fx_expand for @SEQ(...)
 * and friends. Versions in the scenario: alice (member) sees o-1 at @SEQ(n-1), sam (staff)
 * at @SEQ(m-8) — the later note is invisible to staff —, zoe (its ambassador) at @SEQ(am-2).
 */
#include <jansson.h>

#include "rules_fixture.h"

enum row_kind { R_ERR, R_OK, R_NOOP, R_DUP };

typedef struct row {
    const char *name;
    const char *cmd;
    enum row_kind kind;
    int code;            /* R_ERR */
    const char *dup_of;  /* R_DUP: the scenario label whose result comes back */
} row;

#define ERR(code, name, cmd) {name, cmd, R_ERR, code, NULL}
#define OK(name, cmd) {name, cmd, R_OK, 0, NULL}
#define NOOP(name, cmd) {name, cmd, R_NOOP, 0, NULL}
#define DUP(label, name, cmd) {name, cmd, R_DUP, 0, label}

#define NF TL_ENOTFOUND
#define EX TL_EEXISTS
#define FB TL_EFORBIDDEN
#define IV TL_EINVALID

static const row rows[] = {
    /* ---------------------------------------------------------- not_found */
    ERR(NF, "unknown account (project.create)", "{'op':'project.create','as':'sam','id':'p-new','account':'nope','type':'order','title':'T'}"),
    ERR(NF, "unknown account (member)", "{'op':'user.create','id':'u-new','role':'member','account':'nope','name':'U'}"),
    ERR(NF, "unknown account (support message)", "{'op':'message.send','as':'sam','account':'nope','channel':'support','body':'x'}"),
    ERR(NF, "unknown account (support upload)", UPLOAD("sam", "'account':'nope'", "")),
    ERR(NF, "unknown acting user", NOTE("ghost", "")),
    ERR(NF, "ids are case-sensitive (Alice)", NOTE("Alice", "")),
    ERR(NF, "unknown ambassador user", NEWP("sam", ",'ambassador':'ghost'")),
    ERR(NF, "unknown project (note)", "{'op':'note.add','as':'alice','project':'nope','body':'x'}"),
    ERR(NF, "unknown project (status)", "{'op':'project.status','as':'alice','project':'nope','status':'x'}"),
    ERR(NF, "unknown project (topic)", "{'op':'topic.create','as':'alice','project':'nope','title':'T','body':'x'}"),
    ERR(NF, "unknown project (chat)", "{'op':'message.send','as':'alice','project':'nope','channel':'chat','topic':'t-1','body':'x'}"),
    ERR(NF, "unknown project (ambassador)", "{'op':'message.send','as':'alice','project':'nope','channel':'ambassador','body':'x'}"),
    ERR(NF, "unknown project (upload)", UPLOAD("alice", "'project':'nope'", "")),
    ERR(NF, "unknown topic", "{'op':'message.send','as':'alice','project':'o-1','channel':'chat','topic':'nope','body':'x'}"),
    ERR(NF, "unknown message (reply)", "{'op':'message.reply','as':'alice','message':'nope','body':'x'}"),
    ERR(NF, "unknown message (read)", ON_MSG("read", "alice", "nope", "")),
    ERR(NF, "unknown message (unread)", ON_MSG("unread", "alice", "nope", "")),
    ERR(NF, "unknown message (pin)", ON_MSG("pin", "alice", "nope", "")),
    ERR(NF, "unknown message (unpin)", ON_MSG("unpin", "alice", "nope", "")),
    ERR(NF, "unknown message (delete)", ON_MSG("delete", "alice", "nope", "")),
    ERR(NF, "unknown attachment (send)", SEND_CHAT("alice", ",'attachments':['nope']")),
    ERR(NF, "unknown attachment (note)", NOTE("alice", ",'attachments':['nope']")),
    ERR(NF, "unknown attachment (reply)", "{'op':'message.reply','as':'alice','message':'m-2','body':'x','attachments':['nope']}"),
    ERR(NF, "unknown attachment (topic)", "{'op':'topic.create','as':'alice','project':'o-1','title':'T','body':'x','attachments':['nope']}"),

    /* ---------------------------------------------------------- exists */
    ERR(EX, "account id taken", "{'op':'account.create','id':'acme','name':'Other'}"),
    ERR(EX, "user id taken", "{'op':'user.create','id':'alice','role':'staff','name':'Other'}"),
    ERR(EX, "project id taken", "{'op':'project.create','as':'alice','id':'o-1','account':'acme','type':'video','title':'Other'}"),
    ERR(EX, "topic id taken", "{'op':'topic.create','as':'alice','id':'t-1','project':'o-1','title':'Other','body':'x'}"),
    ERR(EX, "topic's message_id taken", "{'op':'topic.create','as':'alice','id':'t-new','project':'o-1','title':'T','body':'x','message_id':'m-2'}"),
    ERR(EX, "message id taken (send)", SEND_CHAT("alice", ",'id':'m-2'")),
    ERR(EX, "message id taken by a note (notes are messages)", NOTE("alice", ",'id':'m-2'")),
    ERR(EX, "message id taken (reply)", "{'op':'message.reply','as':'alice','id':'n-1','message':'m-2','body':'x'}"),
    ERR(EX, "attachment id taken", UPLOAD("alice", "'project':'o-1'", ",'id':'a-1','mime':'text/plain'")),
    ERR(EX, "ambassador_message_id taken", NEWP("sam", ",'ambassador':'zoe','ambassador_message':'hi','ambassador_message_id':'m-2'")),
    OK("ids are unique per kind (a note named like a topic)", NOTE("alice", ",'id':'t-1'")),
    OK("ids are unique per kind (an account named like a user)", "{'op':'account.create','id':'alice','name':'A'}"),
    OK("ids are case-sensitive (ACME)", "{'op':'account.create','id':'ACME','name':'A'}"),

    /* ---------------------------------------------------------- retries */
    DUP("acme", "retry account.create", "{'op':'account.create','id':'acme','name':'Acme'}"),
    DUP("alice", "retry user.create, keys reordered", "{'name':'Alice','account':'acme','role':'member','id':'alice','op':'user.create'}"),
    DUP("o-1", "retry project.create, explicit null = absent", "{'op':'project.create','as':'alice','id':'o-1','account':'acme','type':'order','title':'Order 1','ambassador':'zoe','ambassador_message':'Size M please','ambassador_message_id':'am-1','status':null}"),
    DUP("o-1", "retry project.create, equal as parsed JSON (escapes)", "{'op':'project.create','as':'alice','id':'o-1','account':'acme','type':'order','title':'Or\\u0064er 1','ambassador':'zoe','ambassador_message':'Size M please','ambassador_message_id':'am-1'}"),
    DUP("t-1", "retry topic.create", "{'op':'topic.create','as':'alice','id':'t-1','project':'o-1','title':'Shipping','body':'When?','message_id':'m-1'}"),
    DUP("m-2", "retry message.send with expect:null", "{'op':'message.send','as':'sam','id':'m-2','project':'o-1','channel':'chat','topic':'t-1','body':'Tomorrow','expect':null}"),
    DUP("m-3", "retry message.reply", "{'op':'message.reply','as':'alice','id':'m-3','message':'m-2','body':'Thanks'}"),
    DUP("n-1", "retry note.add", "{'op':'note.add','as':'bob','id':'n-1','project':'o-1','body':'Check stock'}"),
    DUP("a-1", "retry attachment.upload", "{'op':'attachment.upload','as':'alice','id':'a-1','project':'o-1','name':'a.txt','data':'YQ=='}"),
    DUP("m-4", "retry of a message deleted since: retries first", "{'op':'message.send','as':'alice','id':'m-4','project':'o-1','channel':'chat','topic':'t-1','body':'oops'}"),
    DUP("a-2", "retry of an attachment used since", "{'op':'attachment.upload','as':'alice','id':'a-2','project':'o-1','name':'b.txt','mime':'text/plain','data':'Yg=='}"),
    DUP("m-8", "retry of a message whose attachment is now used (by it)", "{'op':'message.send','as':'alice','id':'m-8','project':'o-1','channel':'chat','topic':'t-1','body':'see b.txt','attachments':['a-2']}"),
    ERR(EX, "same id, different content", "{'op':'message.send','as':'sam','id':'m-2','project':'o-1','channel':'chat','topic':'t-1','body':'Today'}"),
    DUP("acme", "retry with an unknown field set to null (null = absent, retries first)", "{'op':'account.create','id':'acme','name':'Acme','x':null}"),
    ERR(EX, "same id, one more optional field", "{'op':'project.create','as':'alice','id':'o-2','account':'acme','type':'order','title':'Order 2','ambassador':'zoe','status':'new'}"),

    /* ---------------------------------------------------------- forbidden */
    ERR(FB, "auditor reads", ON_MSG("read", "aud", "m-2", "")),
    ERR(FB, "auditor marks unread", ON_MSG("unread", "aud", "m-2", "")),
    ERR(FB, "auditor writes a note", NOTE("aud", "")),
    ERR(FB, "auditor creates a project", NEWP("aud", "")),
    ERR(FB, "auditor changes a status", "{'op':'project.status','as':'aud','project':'o-1','status':'x'}"),
    ERR(FB, "staff write internal notes", NOTE("sam", "")),
    ERR(FB, "staff read internal notes", ON_MSG("read", "sam", "n-1", "")),
    ERR(FB, "ambassador in chat", SEND_CHAT("zoe", "")),
    ERR(FB, "another account's member in chat", SEND_CHAT("carl", "")),
    ERR(FB, "another ambassador in the ambassador channel", "{'op':'message.send','as':'amy','project':'o-1','channel':'ambassador','body':'x'}"),
    ERR(FB, "staff in the ambassador channel", "{'op':'message.send','as':'sam','project':'o-1','channel':'ambassador','body':'x'}"),
    ERR(FB, "another account's member creates a project", NEWP("carl", "")),
    ERR(FB, "an ambassador creates a project naming another", NEWP("amy", ",'ambassador':'zoe'")),
    ERR(FB, "an ambassador creates a project naming none", NEWP("amy", "")),
    OK("an ambassador creates a project naming herself", NEWP("amy", ",'ambassador':'amy','ambassador_message':'hi'")),
    ERR(FB, "an ambassador changes a status", "{'op':'project.status','as':'zoe','project':'o-1','status':'x'}"),
    ERR(FB, "ambassador uploads where she cannot write (no channel)", UPLOAD("zoe", "'project':'o-2'", "")),
    OK("ambassador uploads to her project with a channel", UPLOAD("zoe", "'project':'o-1'", "")),
    OK("staff upload to an account's support", UPLOAD("sam", "'account':'acme'", "")),
    ERR(FB, "ambassador uploads to support", UPLOAD("zoe", "'account':'acme'", "")),
    ERR(FB, "another account's member uploads", UPLOAD("carl", "'project':'o-1'", "")),
    ERR(FB, "another account's member writes to support", "{'op':'message.send','as':'carl','account':'acme','channel':'support','body':'x'}"),
    ERR(FB, "delete by a colleague, not the author", ON_MSG("delete", "bob", "m-5", "")),
    ERR(FB, "delete by staff of a member's message", ON_MSG("delete", "sam", "m-5", "")),
    ERR(FB, "delete of the creation message by whoever recorded it", ON_MSG("delete", "alice", "am-1", "")),
    OK("delete of the creation message by its author, the ambassador", ON_MSG("delete", "zoe", "am-1", "")),
    ERR(FB, "delete of someone else's deleted message", ON_MSG("delete", "bob", "m-4", "")),
    ERR(FB, "delete of the ambassador's message by a member", ON_MSG("delete", "alice", "am-2", "")),

    /* ---------------------------------------------------------- invalid_input: ids */
    ERR(IV, "id with a space", "{'op':'account.create','id':'a b','name':'A'}"),
    ERR(IV, "empty id", "{'op':'account.create','id':'','name':'A'}"),
    ERR(IV, "id of 65 bytes", "{'op':'account.create','id':'@ID(65)','name':'A'}"),
    OK("id of 64 bytes", "{'op':'account.create','id':'@ID(64)','name':'A'}"),
    OK("id of every allowed character", "{'op':'account.create','id':'AZaz09._:-','name':'A'}"),
    ERR(IV, "non-ASCII id", "{'op':'account.create','id':'\\u00e9','name':'A'}"),
    ERR(IV, "bad id in as", NOTE("al/ice", "")),
    ERR(IV, "bad id in message", ON_MSG("read", "alice", "m 2", "")),
    ERR(IV, "bad id in attachments", SEND_CHAT("alice", ",'attachments':['a 1']")),
    ERR(IV, "bad id in ambassador", NEWP("sam", ",'ambassador':'z z'")),
    ERR(IV, "NUL inside an id", "{'op':'account.create','id':'a\\u0000b','name':'A'}"),

    /* ---------------------------------------------------------- invalid_input: bodies */
    ERR(IV, "empty body", "{'op':'note.add','as':'alice','project':'o-1','body':''}"),
    ERR(IV, "invalid UTF-8 body", "{'op':'note.add','as':'alice','project':'o-1','body':'a\xff" "b'}"),
    ERR(IV, "overlong UTF-8 body (C0 80)", "{'op':'note.add','as':'alice','project':'o-1','body':'a\xc0\x80" "b'}"),
    ERR(IV, "body with NUL", "{'op':'note.add','as':'alice','project':'o-1','body':'a\\u0000b'}"),
    ERR(IV, "lone surrogate in a body", "{'op':'note.add','as':'alice','project':'o-1','body':'a\\ud800b'}"),
    OK("body of 65536 bytes", "{'op':'note.add','as':'alice','project':'o-1','body':'@X(65536)'}"),
    ERR(IV, "body of 65537 bytes", "{'op':'note.add','as':'alice','project':'o-1','body':'@X(65537)'}"),
    OK("body of 65536 bytes in 2-byte characters", "{'op':'note.add','as':'alice','project':'o-1','body':'@E(32768)'}"),
    ERR(IV, "body over 65536 bytes in 2-byte characters", "{'op':'note.add','as':'alice','project':'o-1','body':'@E(32769)'}"),
    ERR(IV, "ambassador message over 64 KiB", NEWP("sam", ",'ambassador':'zoe','ambassador_message':'@X(65537)'")),
    ERR(IV, "empty title", "{'op':'topic.create','as':'alice','project':'o-1','title':'','body':'x'}"),
    ERR(IV, "empty name", "{'op':'account.create','id':'a-new','name':''}"),

    /* ---------------------------------------------------------- invalid_input: values, fields */
    ERR(IV, "unknown role", "{'op':'user.create','id':'u-new','role':'admin','name':'U'}"),
    ERR(IV, "unknown project type", "{'op':'project.create','as':'alice','id':'p-new','account':'acme','type':'blog','title':'T'}"),
    ERR(IV, "unknown channel", "{'op':'message.send','as':'alice','project':'o-1','channel':'email','body':'x'}"),
    ERR(IV, "notes through message.send", "{'op':'message.send','as':'alice','project':'o-1','channel':'notes','body':'x'}"),
    ERR(IV, "unknown op", "{'op':'message.edit','as':'alice','message':'m-2'}"),
    ERR(IV, "missing op", "{'as':'alice','message':'m-2'}"),
    ERR(IV, "unknown field", NOTE("alice", ",'colour':'red'")),
    ERR(IV, "missing name (account)", "{'op':'account.create','id':'a-new'}"),
    ERR(IV, "missing id (account)", "{'op':'account.create','name':'A'}"),
    ERR(IV, "missing role", "{'op':'user.create','id':'u-new','name':'U'}"),
    ERR(IV, "member without account", "{'op':'user.create','id':'u-new','role':'member','name':'U'}"),
    ERR(IV, "staff with an account", "{'op':'user.create','id':'u-new','role':'staff','account':'acme','name':'U'}"),
    ERR(IV, "user.create takes no as", "{'op':'user.create','as':'alice','id':'u-new','role':'staff','name':'U'}"),
    ERR(IV, "account.create takes no as", "{'op':'account.create','as':'alice','id':'a-new','name':'A'}"),
    ERR(IV, "missing title (project)", "{'op':'project.create','as':'alice','id':'p-new','account':'acme','type':'order'}"),
    ERR(IV, "missing as (project)", "{'op':'project.create','id':'p-new','account':'acme','type':'order','title':'T'}"),
    ERR(IV, "missing id (project)", "{'op':'project.create','as':'alice','account':'acme','type':'order','title':'T'}"),
    ERR(IV, "missing status", "{'op':'project.status','as':'alice','project':'o-1'}"),
    ERR(IV, "status of 65 bytes", "{'op':'project.status','as':'alice','project':'o-1','status':'@X(65)'}"),
    OK("status of 64 bytes", "{'op':'project.status','as':'alice','project':'o-1','status':'@X(64)'}"),
    ERR(IV, "empty status", "{'op':'project.status','as':'alice','project':'o-1','status':''}"),
    ERR(IV, "missing body (topic)", "{'op':'topic.create','as':'alice','project':'o-1','title':'T'}"),
    ERR(IV, "missing channel", "{'op':'message.send','as':'alice','project':'o-1','topic':'t-1','body':'x'}"),
    ERR(IV, "chat message without project", "{'op':'message.send','as':'alice','channel':'chat','topic':'t-1','body':'x'}"),
    ERR(IV, "support message without account", "{'op':'message.send','as':'alice','channel':'support','body':'x'}"),
    ERR(IV, "missing project (note)", "{'op':'note.add','as':'alice','body':'x'}"),
    ERR(IV, "missing body (reply)", "{'op':'message.reply','as':'alice','message':'m-2'}"),
    ERR(IV, "missing message (read)", "{'op':'message.read','as':'alice'}"),
    ERR(IV, "missing as (pin)", "{'op':'message.pin','message':'m-2'}"),
    ERR(IV, "missing data (upload)", "{'op':'attachment.upload','as':'alice','project':'o-1','name':'x'}"),
    ERR(IV, "missing name (upload)", "{'op':'attachment.upload','as':'alice','project':'o-1','data':'YQ=='}"),
    ERR(IV, "upload to neither project nor account", "{'op':'attachment.upload','as':'alice','name':'x','data':'YQ=='}"),
    ERR(IV, "upload to both project and account", UPLOAD("alice", "'project':'o-1','account':'acme'", "")),
    ERR(IV, "data not base64", "{'op':'attachment.upload','as':'alice','project':'o-1','name':'x','data':'!!!!'}"),
    ERR(IV, "data without padding", "{'op':'attachment.upload','as':'alice','project':'o-1','name':'x','data':'YQ'}"),
    ERR(IV, "data with a newline", "{'op':'attachment.upload','as':'alice','project':'o-1','name':'x','data':'YQ==\\nYQ=='}"),
    ERR(IV, "null name", "{'op':'account.create','id':'a-new','name':null}"),
    ERR(IV, "null body", "{'op':'note.add','as':'alice','project':'o-1','body':null}"),
    ERR(IV, "null as", "{'op':'note.add','as':null,'project':'o-1','body':'x'}"),
    ERR(IV, "body of the wrong type", "{'op':'note.add','as':'alice','project':'o-1','body':5}"),
    ERR(IV, "attachments as a string", SEND_CHAT("alice", ",'attachments':'a-1'")),
    ERR(IV, "attachments holding a number", SEND_CHAT("alice", ",'attachments':[1]")),
    ERR(IV, "expect as a string", NOTE("alice", ",'expect':'3'")),
    ERR(IV, "negative expect", NOTE("alice", ",'expect':-1")),
    ERR(IV, "fractional expect", NOTE("alice", ",'expect':1.5")),
    ERR(IV, "id as a number", "{'op':'account.create','id':7,'name':'A'}"),
    ERR(IV, "name as a boolean", "{'op':'account.create','id':'a-new','name':true}"),
    ERR(IV, "mime as a number", UPLOAD("alice", "'project':'o-1'", ",'mime':5")),
    ERR(IV, "op as a number", "{'op':5,'id':'a-new','name':'A'}"),
    ERR(IV, "NUL in a key", "{'op':'account.create','id':'a-new','na\\u0000me':'A'}"),
    ERR(IV, "a key given twice", "{'op':'account.create','id':'a-new','name':'A','name':'B'}"),
    ERR(IV, "attachment listed twice", SEND_CHAT("alice", ",'attachments':['a-1','a-1']")),
    ERR(IV, "topic of another project", "{'op':'message.send','as':'alice','project':'o-1','channel':'chat','topic':'t-2','body':'x'}"),
    ERR(NF, "topic of another project, the project unknown: not_found (no project to compare with)", "{'op':'message.send','as':'alice','project':'nope','channel':'chat','topic':'t-2','body':'x'}"),
    ERR(IV, "expect beyond 64 bits", NOTE("alice", ",'expect':99999999999999999999")),
    ERR(IV, "trailing garbage after the object", "{'op':'account.create','id':'a-new','name':'A'} x"),
    OK("a topic whose first message has the topic's id", "{'op':'topic.create','as':'alice','id':'t-9','project':'o-1','title':'T','body':'x','message_id':'t-9'}"),
    ERR(IV, "a member named ambassador", NEWP("sam", ",'ambassador':'bob'")),
    ERR(IV, "staff named ambassador", NEWP("sam", ",'ambassador':'sam'")),
    ERR(IV, "ambassador_message on a video", "{'op':'project.create','as':'sam','id':'p-new','account':'acme','type':'video','title':'V','ambassador':'zoe','ambassador_message':'hi'}"),
    ERR(IV, "ambassador_message without ambassador", NEWP("sam", ",'ambassador_message':'hi'")),
    ERR(IV, "empty ambassador_message", NEWP("sam", ",'ambassador':'zoe','ambassador_message':''")),
    ERR(IV, "ambassador_message_id without ambassador_message", NEWP("sam", ",'ambassador':'zoe','ambassador_message_id':'m-new'")),
    OK("an ambassador on an application (no message)", "{'op':'project.create','as':'sam','id':'p-new','account':'acme','type':'application','title':'A','ambassador':'zoe'}"),
    ERR(IV, "account on a project message", SEND_CHAT("alice", ",'account':'acme'")),
    ERR(IV, "attachments on project.create", NEWP("alice", ",'attachments':['a-1']")),
    ERR(IV, "expect on a support message", "{'op':'message.send','as':'alice','account':'acme','channel':'support','body':'x','expect':1}"),
    ERR(IV, "expect on a read of a support message", ON_MSG("read", "sam", "s-1", ",'expect':1")),
    ERR(IV, "expect on a support upload", UPLOAD("alice", "'account':'acme'", ",'expect':1")),
    ERR(IV, "expect on account.create", "{'op':'account.create','id':'a-new','name':'A','expect':0}"),
    ERR(IV, "chat message without topic", "{'op':'message.send','as':'alice','project':'o-1','channel':'chat','body':'x'}"),
    ERR(IV, "topic on the ambassador channel", "{'op':'message.send','as':'alice','project':'o-1','channel':'ambassador','topic':'t-1','body':'x'}"),
    ERR(IV, "topic on support", "{'op':'message.send','as':'alice','account':'acme','channel':'support','topic':'t-1','body':'x'}"),
    ERR(IV, "project on a support message", "{'op':'message.send','as':'alice','account':'acme','project':'o-1','channel':'support','body':'x'}"),
    ERR(IV, "channel on a note", NOTE("alice", ",'channel':'notes'")),

    /* ---------------------------------------------------------- attachments */
    ERR(TL_ETOOMANY, "four attachments (send)", SEND_CHAT("alice", ATT4)),
    ERR(TL_ETOOMANY, "four attachments (note)", NOTE("alice", ATT4)),
    ERR(TL_ETOOMANY, "four attachments (topic)", "{'op':'topic.create','as':'alice','project':'o-1','title':'T','body':'x'" ATT4 "}"),
    ERR(TL_ETOOMANY, "four attachments (reply)", "{'op':'message.reply','as':'alice','message':'m-2','body':'x'" ATT4 "}"),
    OK("three attachments", SEND_CHAT("alice", ",'attachments':['a-1','a-5','a-6']")),
    OK("an empty attachment list", SEND_CHAT("alice", ",'attachments':[]")),
    ERR(IV, "attachment already used", SEND_CHAT("alice", ",'attachments':['a-2']")),
    ERR(IV, "attachment uploaded by someone else", SEND_CHAT("alice", ",'attachments':['a-3']")),
    ERR(IV, "attachment of another project", SEND_CHAT("alice", ",'attachments':['a-4']")),
    ERR(IV, "support attachment on a project message", SEND_CHAT("alice", ",'attachments':['a-s']")),
    ERR(IV, "project attachment on a support message", "{'op':'message.send','as':'alice','account':'acme','channel':'support','body':'x','attachments':['a-1']}"),
    OK("support attachment on a support message", "{'op':'message.send','as':'alice','account':'acme','channel':'support','body':'x','attachments':['a-s']}"),
    ERR(IV, "attachment of another project (reply)", "{'op':'message.reply','as':'alice','message':'m-2','body':'x','attachments':['a-4']}"),
    ERR(IV, "support attachment on a project reply", "{'op':'message.reply','as':'alice','message':'m-2','body':'x','attachments':['a-s']}"),
    ERR(IV, "project attachment on a support reply", "{'op':'message.reply','as':'alice','message':'s-1','body':'x','attachments':['a-1']}"),
    OK("a project attachment on a reply in its project", "{'op':'message.reply','as':'alice','message':'m-2','body':'x','attachments':['a-1']}"),
    OK("support attachment on a support reply", "{'op':'message.reply','as':'alice','message':'s-1','body':'x','attachments':['a-s']}"),
    OK("attachment on a note", NOTE("alice", ",'attachments':['a-1']")),
    ERR(TL_ETOOLARGE, "attachment over the limit", "{'op':'attachment.upload','as':'alice','project':'o-1','name':'x','data':'@B64(1025)'}"),
    OK("attachment at the limit", "{'op':'attachment.upload','as':'alice','project':'o-1','name':'x','data':'@B64(1024)'}"),
    OK("zero-byte attachment", "{'op':'attachment.upload','as':'alice','project':'o-1','name':'x','data':''}"),

    /* ---------------------------------------------------------- message state */
    ERR(TL_EHASREPLIES, "delete with a live reply", ON_MSG("delete", "sam", "m-2", "")),
    OK("delete when the only reply is deleted", ON_MSG("delete", "bob", "m-6", "")),
    OK("delete a reply", ON_MSG("delete", "alice", "m-3", "")),
    OK("delete a pinned message", ON_MSG("delete", "alice", "m-5", "")),
    ERR(TL_EDELETED, "reply to a deleted message", "{'op':'message.reply','as':'bob','message':'m-4','body':'x'}"),
    ERR(TL_EDELETED, "read a deleted message", ON_MSG("read", "bob", "m-4", "")),
    ERR(TL_EDELETED, "read one's own deleted message", ON_MSG("read", "alice", "m-4", "")),
    ERR(TL_EDELETED, "mark a deleted message unread", ON_MSG("unread", "bob", "m-4", "")),
    ERR(TL_EDELETED, "pin a deleted message", ON_MSG("pin", "bob", "m-4", "")),
    ERR(TL_EDELETED, "unpin a deleted message", ON_MSG("unpin", "bob", "m-4", "")),
    ERR(TL_EDELETED, "delete a deleted message", ON_MSG("delete", "alice", "m-4", "")),
    ERR(TL_EPINNED, "pin a pinned message", ON_MSG("pin", "alice", "m-5", "")),
    ERR(TL_ENOTPINNED, "unpin a message not pinned", ON_MSG("unpin", "alice", "m-2", "")),
    OK("unpin a pinned message (pins are shared)", ON_MSG("unpin", "sam", "m-5", "")),
    OK("pin a message", ON_MSG("pin", "sam", "m-2", "")),
    OK("pin a note", ON_MSG("pin", "alice", "n-1", "")),
    OK("pin in support", ON_MSG("pin", "sam", "s-1", "")),

    /* ---------------------------------------------------------- channels */
    ERR(TL_ECHANNEL, "ambassador channel that does not exist (member)", "{'op':'message.send','as':'alice','project':'o-2','channel':'ambassador','body':'x'}"),
    ERR(TL_ECHANNEL, "ambassador channel that does not exist (its ambassador)", "{'op':'message.send','as':'zoe','project':'o-2','channel':'ambassador','body':'x'}"),
    ERR(TL_ECHANNEL, "ambassador channel of a project without ambassador", "{'op':'message.send','as':'alice','project':'v-1','channel':'ambassador','body':'x'}"),
    OK("ambassador channel that exists (its ambassador)", "{'op':'message.send','as':'zoe','project':'o-1','channel':'ambassador','body':'x'}"),
    OK("ambassador channel that exists (member)", "{'op':'message.send','as':'bob','project':'o-1','channel':'ambassador','body':'x'}"),
    OK("reply in the ambassador channel", "{'op':'message.reply','as':'zoe','message':'am-1','body':'x'}"),
    OK("staff in support", "{'op':'message.send','as':'sue','account':'beta','channel':'support','body':'x'}"),

    /* ---------------------------------------------------------- versions (expect) */
    OK("expect = the member's version", "{'op':'project.status','as':'alice','project':'o-1','status':'delivered','expect':@SEQ(n-1)}"),
    ERR(TL_ECONFLICT, "a note moved the member's version", "{'op':'project.status','as':'alice','project':'o-1','status':'delivered','expect':@SEQ(m-8)}"),
    OK("a note does not move staff's version", "{'op':'project.status','as':'sam','project':'o-1','status':'delivered','expect':@SEQ(m-8)}"),
    ERR(TL_ECONFLICT, "staff cannot match a note's seq", "{'op':'project.status','as':'sam','project':'o-1','status':'delivered','expect':@SEQ(n-1)}"),
    OK("expect = the ambassador's version", "{'op':'message.send','as':'zoe','project':'o-1','channel':'ambassador','body':'x','expect':@SEQ(am-2)}"),
    ERR(TL_ECONFLICT, "the ambassador's version ignores notes", "{'op':'message.send','as':'zoe','project':'o-1','channel':'ambassador','body':'x','expect':@SEQ(n-1)}"),
    OK("expect on a read", ON_MSG("read", "bob", "m-5", ",'expect':@SEQ(n-1)")),
    ERR(TL_ECONFLICT, "stale expect on a reply", "{'op':'message.reply','as':'bob','message':'m-2','body':'x','expect':1}"),
    ERR(TL_ECONFLICT, "stale expect on a note", NOTE("bob", ",'expect':1")),
    ERR(TL_ECONFLICT, "stale expect on a topic", "{'op':'topic.create','as':'alice','project':'o-1','title':'T','body':'x','expect':1}"),
    ERR(TL_ECONFLICT, "stale expect on an upload", UPLOAD("alice", "'project':'o-1'", ",'expect':1")),
    ERR(TL_ECONFLICT, "stale expect on a delete", ON_MSG("delete", "alice", "m-5", ",'expect':1")),
    ERR(TL_ECONFLICT, "stale expect on a pin", ON_MSG("pin", "alice", "m-2", ",'expect':1")),
    ERR(TL_ECONFLICT, "a new project is at version 0", NEWP("alice", ",'expect':5")),
    ERR(TL_ECONFLICT, "a new project is at version 0, not 1", NEWP("alice", ",'expect':1")),
    OK("a new project at version 0", NEWP("alice", ",'expect':0")),

    /* ---------------------------------------------------------- no-ops */
    NOOP("read twice", ON_MSG("read", "bob", "m-2", "")),
    NOOP("read one's own message", ON_MSG("read", "alice", "m-1", "")),
    NOOP("mark unread what is unread", ON_MSG("unread", "bob", "m-5", "")),
    NOOP("mark one's own message unread", ON_MSG("unread", "alice", "m-1", "")),
    NOOP("status to the same value", "{'op':'project.status','as':'alice','project':'o-1','status':'shipped'}"),
    NOOP("the ambassador reads her own creation message", ON_MSG("read", "zoe", "am-1", "")),
    OK("mark unread what was read", ON_MSG("unread", "alice", "m-2", "")),
    OK("read a message", ON_MSG("read", "bob", "m-5", "")),

    /* ---------------------------------------------------------- precedence */
    ERR(IV, "invalid_input before too_large", "{'op':'attachment.upload','as':'al ice','project':'o-1','name':'x','data':'@B64(1025)'}"),
    ERR(TL_ETOOLARGE, "too_large before not_found", "{'op':'attachment.upload','as':'ghost','project':'nope','name':'x','data':'@B64(1025)'}"),
    ERR(TL_ETOOLARGE, "too_large before forbidden", "{'op':'attachment.upload','as':'zoe','project':'o-2','name':'x','data':'@B64(1025)'}"),
    ERR(IV, "invalid_input before not_found", "{'op':'message.send','as':'ghost','project':'o-1','channel':'chat','topic':'t-2','body':'x'}"),
    ERR(IV, "invalid_input before forbidden (auditor)", "{'op':'note.add','as':'aud','project':'nope','body':''}"),
    ERR(NF, "not_found before exists", "{'op':'note.add','as':'alice','id':'n-1','project':'nope','body':'x'}"),
    ERR(NF, "not_found before forbidden (auditor)", ON_MSG("read", "aud", "nope", "")),
    ERR(NF, "not_found before too_many_attachments", SEND_CHAT("alice", ",'attachments':['nope','a-1','a-5','a-6']")),
    ERR(EX, "exists before forbidden", NOTE("sam", ",'id':'n-1'")),
    ERR(EX, "exists before conflict", NOTE("alice", ",'id':'n-1','expect':1")),
    ERR(FB, "forbidden before conflict", NOTE("sam", ",'expect':1")),
    ERR(FB, "forbidden before deleted", ON_MSG("read", "carl", "m-4", "")),
    ERR(FB, "forbidden before has_replies", ON_MSG("delete", "bob", "m-2", "")),
    ERR(FB, "forbidden before channel_unavailable", "{'op':'message.send','as':'sam','project':'o-2','channel':'ambassador','body':'x'}"),
    ERR(FB, "forbidden before already_pinned", ON_MSG("pin", "carl", "m-5", "")),
    ERR(TL_ECONFLICT, "conflict before deleted", "{'op':'message.reply','as':'alice','message':'m-4','body':'x','expect':1}"),
    ERR(TL_ECONFLICT, "conflict before channel_unavailable", "{'op':'message.send','as':'alice','project':'o-2','channel':'ambassador','body':'x','expect':1}"),
    ERR(TL_EDELETED, "deleted before too_many_attachments", "{'op':'message.reply','as':'alice','message':'m-4','body':'x'" ATT4 "}"),
    ERR(TL_EDELETED, "deleted before not_pinned", ON_MSG("unpin", "alice", "m-4", "")),
    ERR(TL_ECHANNEL, "channel_unavailable before too_many_attachments", "{'op':'message.send','as':'alice','project':'o-2','channel':'ambassador','body':'x','attachments':['a-8','a-9','a-10','a-11']}"),
    ERR(IV, "invalid_input (used attachment) before too_many_attachments", SEND_CHAT("alice", ",'attachments':['a-2','a-1','a-5','a-6']")),
    ERR(IV, "used attachment before an unknown project (send)", "{'op':'message.send','as':'alice','project':'nope','channel':'chat','topic':'t-1','body':'x','attachments':['a-2']}"),
    ERR(IV, "someone else's attachment before an unknown project (note)", "{'op':'note.add','as':'alice','project':'nope','body':'x','attachments':['a-3']}"),
    ERR(IV, "used attachment before an unknown project (topic)", "{'op':'topic.create','as':'alice','project':'nope','title':'T','body':'x','attachments':['a-2']}"),
    ERR(IV, "used attachment before an unknown parent (reply)", "{'op':'message.reply','as':'alice','message':'nope','body':'x','attachments':['a-2']}"),
    ERR(NF, "an unused attachment does not hide an unknown parent (reply)", "{'op':'message.reply','as':'alice','message':'nope','body':'x','attachments':['a-1']}"),
    ERR(NF, "an unused attachment does not hide an unknown project (send)", "{'op':'message.send','as':'alice','project':'nope','channel':'chat','topic':'t-1','body':'x','attachments':['a-1']}"),
    ERR(NF, "an unused attachment does not hide an unknown account (support)", "{'op':'message.send','as':'alice','account':'nope','channel':'support','body':'x','attachments':['a-s']}"),
    ERR(IV, "a used attachment before an unknown account (support)", "{'op':'message.send','as':'alice','account':'nope','channel':'support','body':'x','attachments':['a-2']}"),
    ERR(IV, "invalid_input before exists", "{'op':'account.create','id':'acme','name':''}"),
};

#define NROWS (sizeof rows / sizeof rows[0])

/* The result line must have the spec's shape for this outcome. */
static void check_json(const row *r, const tl_result *res, uint64_t dup_seq) {
    char *text;
    ck_assert_int_eq(tl_result_json(res, &text), 0);
    json_error_t e;
    json_t *o = json_loads(text, 0, &e);
    ck_assert_msg(o != NULL, "%s: result is not JSON: %s", r->name, text);
    json_t *ok = json_object_get(o, "ok");
    if (r->kind == R_ERR) {
        ck_assert_msg(json_is_false(ok), "%s: %s", r->name, text);
        ck_assert_str_eq(json_string_value(json_object_get(o, "error")), tl_strerror(r->code));
        const char *m = json_string_value(json_object_get(o, "message"));
        ck_assert_msg(m && *m, "%s: no message: %s", r->name, text);
        ck_assert_int_eq(json_object_size(o), 3);
    } else if (r->kind == R_NOOP) {
        ck_assert_msg(strcmp(text, "{\"ok\":true,\"noop\":true}") == 0, "%s: %s", r->name, text);
    } else {
        ck_assert_msg(json_is_true(ok), "%s: %s", r->name, text);
        ck_assert_int_eq(json_integer_value(json_object_get(o, "seq")), (json_int_t)res->seq);
        if (r->kind == R_DUP) {
            ck_assert_msg(json_is_true(json_object_get(o, "duplicate")), "%s: %s", r->name, text);
            ck_assert_uint_eq(res->seq, dup_seq);
        } else {
            ck_assert_ptr_null(json_object_get(o, "duplicate"));
        }
    }
    json_decref(o);
    tl_free(text);
}

static void check_row(fx *f, const row *r, int rc, const tl_result *res, uint64_t before, uint64_t after) {
    uint64_t dup_seq = r->kind == R_DUP ? fx_seq(f, r->dup_of) : 0;
    switch (r->kind) {
    case R_ERR:
        ck_assert_msg(rc == r->code && res->code == r->code, "%s: want %s, got %s (%s)", r->name, tl_strerror(r->code),
                      tl_strerror(res->code), res->message);
        ck_assert_msg(after == before, "%s: refused, yet the log grew from %llu to %llu", r->name,
                      (unsigned long long)before, (unsigned long long)after);
        break;
    case R_NOOP:
        ck_assert_msg(rc == 0 && res->noop && !res->seq, "%s: want a no-op, got %s seq %llu (%s)", r->name,
                      tl_strerror(rc), (unsigned long long)res->seq, res->message);
        ck_assert_msg(after == before, "%s: a no-op grew the log", r->name);
        break;
    case R_DUP:
        ck_assert_msg(rc == 0 && res->duplicate, "%s: want a duplicate, got %s (%s)", r->name, tl_strerror(rc), res->message);
        ck_assert_msg(res->seq == dup_seq, "%s: duplicate of seq %llu, answered %llu", r->name,
                      (unsigned long long)dup_seq, (unsigned long long)res->seq);
        ck_assert_str_eq(res->id, r->dup_of);
        ck_assert_msg(after == before, "%s: a retry grew the log", r->name);
        break;
    case R_OK:
        ck_assert_msg(rc == 0 && !res->noop && !res->duplicate && res->seq == before + 1, "%s: want accepted, got %s (%s)",
                      r->name, tl_strerror(rc), res->message);
        ck_assert_msg(after == before + 1, "%s: accepted command appended %llu events", r->name,
                      (unsigned long long)(after - before));
        break;
    }
    check_json(r, res, dup_seq);
}

START_TEST(rule_row) {
    const row *r = &rows[_i];
    fx f;
    fx_scenario(&f);
    char *cmd = dq(r->cmd);
    uint64_t before = fx_events(&f);
    tl_result res;
    int rc = fx_cmd(&f, cmd, &res);
    uint64_t after = fx_events(&f);
    check_row(&f, r, rc, &res, before, after);
    if (r->kind == R_DUP && strcmp(r->dup_of, "t-1") == 0) ck_assert_str_eq(res.message_id, "m-1");
    free(cmd);
    fx_close(&f);
}
END_TEST

/* Every row that changes nothing, all in one batch on one scenario: the same answers
 * (group commit changes no decision), and the log does not grow at all. */
START_TEST(refusals_in_one_batch) {
    fx f;
    fx_scenario(&f);
    uint64_t before = fx_events(&f);
    tl_batch *b;
    ck_assert_int_eq(tl_batch_begin(f.log, &b), 0);
    tl_cmd *cmds[NROWS] = {0};
    tl_result res[NROWS];
    int rcs[NROWS];
    for (size_t i = 0; i < NROWS; i++) {
        rcs[i] = 1;
        if (rows[i].kind == R_OK) continue;
        char *cmd = dq(rows[i].cmd), *line = fx_expand(&f, cmd);
        rcs[i] = tl_cmd_parse(&cmds[i], line, strlen(line), &res[i]);
        if (rcs[i] == 0) rcs[i] = tl_batch_exec(b, cmds[i], &res[i]);
        free(cmd);
        free(line);
    }
    ck_assert_int_eq(tl_batch_commit(b), 0);
    uint64_t after = fx_events(&f);
    for (size_t i = 0; i < NROWS; i++) {
        if (rows[i].kind == R_OK) continue;
        check_row(&f, &rows[i], rcs[i], &res[i], before, after);
        tl_cmd_free(cmds[i]);
    }
    tl_verify_report rep;
    ck_assert_int_eq(tl_log_verify(f.log, NULL, &rep), 0);
    fx_close(&f);
}
END_TEST

int main(void) {
    Suite *s = suite_create("rules_table");
    TCase *tc = tcase_create("rows");
    tcase_set_timeout(tc, 600);
    tcase_add_unchecked_fixture(tc, template_up, fx_template_remove);
    tcase_add_loop_test(tc, rule_row, 0, (int)NROWS);
    suite_add_tcase(s, tc);
    TCase *tb = tcase_create("more");
    tcase_set_timeout(tb, 120);
    tcase_add_unchecked_fixture(tb, template_up, fx_template_remove);
    tcase_add_test(tb, refusals_in_one_batch);
    suite_add_tcase(s, tb);
    fprintf(stderr, "test_rules_table: %zu rows\n", NROWS);
    return tu_main(s);
}
