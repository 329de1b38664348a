"""mutate_check.py THREADLOG_BINARY -- the checker's own power: plants each fault below in the
model (not in threadlog), one at a time, and reports whether model_check.py's comparison with
the real binary catches it within two seeds of 120 steps. Every line should say CAUGHT."""
import os, shutil, sys, random, tempfile
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model_check as mc
M = mc.Model
orig = {k: v for k, v in M.__dict__.items() if not k.startswith('__')}
def restore():
    for k, v in orig.items(): setattr(M, k, v)
muts = {}
def mut(f): muts[f.__name__] = f; return f
@mut
def staff_sees_notes():
    o = orig['in_channel']
    M.in_channel = lambda self, u, p, ch, account=None: True if (ch == 'notes' and self.users[u]['role']=='staff') else o(self, u, p, ch, account)
@mut
def pins_oldest_first():
    o = orig['q_messages']
    def q(self, *a, **k):
        r = o(self, *a, **k)
        pinned = [m for m in r if m['pinned']]
        return pinned[::-1] + [m for m in r if not m['pinned']]
    M.q_messages = q
@mut
def replies_count_deleted():
    o = orig['_msg_json']
    def f(self, u, m, aud):
        d = o(self, u, m, aud); d['replies'] = sum(1 for r in self.messages.values() if r['parent']==m['id']); return d
    M._msg_json = f
@mut
def version_ignores_viewer():
    M.version = lambda self, u, p: max([e['seq'] for e in self.events if e['project']==p] or [0])
@mut
def read_own_not_noop():
    o = orig['_op_message_read']
    def f(self, cmd):
        u, m = self._target(cmd)
        if m['author'] == u and not m['deleted'] and self.msg_audience(u, m) and 'expect' not in cmd:
            s = self._append(); return {"ok": True, "seq": s}
        return o(self, cmd)
    M._op_message_read = f
@mut
def no_has_replies():
    o = orig['_op_message_delete']
    def f(self, cmd):
        saved = {i: m['parent'] for i, m in self.messages.items()}
        for m in self.messages.values(): m['parent'] = None
        try: return o(self, cmd)
        finally:
            for i, p in saved.items(): self.messages[i]['parent'] = p
    M._op_message_delete = f
@mut
def dashboard_oldest_first():
    o = orig['q_dashboard_type']
    def f(self, u, t):
        n, ms = o(self, u, t); return n, ms[::-1]
    M.q_dashboard_type = f
@mut
def deleted_body_for_all():
    o = orig['_hist_msg_fields']
    def f(self, u, m):
        d = o(self, u, m)
        if m['deleted'] and not m.get('erased'): d['body'] = m['body']
        return d
    M._hist_msg_fields = f
@mut
def ambassador_msg_to_staff():
    o = orig['can_read_channel']
    M.can_read_channel = lambda self, u, p, ch, account=None: True if (ch=='ambassador' and self.users[u]['role']=='staff') else o(self, u, p, ch, account)
@mut
def unread_sort_ignores_activity():
    o = orig['q_tracking']
    def f(self, u, typ=None, sort='activity'):
        r = o(self, u, typ, sort)
        if sort == 'unread': r.sort(key=lambda x: (-x['unread'], x['project']))
        return r
    M.q_tracking = f
@mut
def new_member_no_old_unread():
    o = orig['is_unread']
    def f(self, u, m):
        return o(self, u, m) and not (u.startswith('u') and m['seq'] < self.users[u].get('_seq', 0))
    M.is_unread = f
    o2 = orig['_op_user_create']
    def g(self, cmd):
        r = o2(self, cmd)
        if r.get('ok'): self.users[cmd['id']]['_seq'] = r['seq']
        return r
    M._op_user_create = g
for name, f in muts.items():
    restore(); f()
    caught = None
    for seed in (1, 2):
        work = tempfile.mkdtemp(prefix='tl-mut-')
        try:
            mc.run_seed(sys.argv[1], seed, 120, 60, work)
        except mc.Divergence as d:
            caught = d.sig; break
        except Exception as e:
            caught = ('crash', repr(e)[:80]); break
        finally:
            shutil.rmtree(work, ignore_errors=True)
    print("%-30s %s" % (name, "CAUGHT " + str(caught) if caught else "missed"))
restore()
