// The console's two languages. A key missing in one falls back to English, then to the key itself.
export const LANGUAGES = ["zh-CN", "en-US"];
const LANG_KEY = "console.lang";

const MESSAGES = {
  "en-US": {
    title: "Review console", language: "Language", signOut: "Sign out", signInTitle: "Sign in",
    yourName: "Your name", signInLocal: "Sign in (local cloud)",
    pasteToken: "Or paste an ops token from your identity provider", useToken: "Use this token",
    localSignInMissing: "Local sign-in exists only on the local cloud: paste a token from your identity provider.",
    refused: "This token may not use the review console (it needs the ops audience and scope).",
    signedInAs: "Signed in as {name}",
    filterReason: "Reason", filterLoan: "Loan", all: "All",
    "cat.no_channel": "No channel delivered", "cat.borrower_report": "Borrower report",
    "cat.prepare_failed": "Could not prepare", "cat.borrower_missing": "Missing borrower",
    "cat.outcome_unknown": "Send outcome unknown", "cat.other": "Other",
    "count.open": "Open", "count.overdue": "Overdue", "count.unassigned": "Unassigned",
    due: "Due", loan: "Loan", status: "Status", reason: "Reason", assignee: "Assignee", opened: "Opened",
    noCases: "No open cases.", overdue: "overdue", refreshedAt: "Updated {time}", nobody: "nobody",
    back: "Back to the queue", caseTitle: "Case {id}", owner: "Owner", take: "Take this case",
    takenBy: "Taken by {name}", youHaveIt: "You have this case", notTaken: "Nobody has taken this case yet",
    decisionTitle: "Decision", "dec.reached_by_phone": "Reached by phone",
    "dec.contact_corrected": "Contact corrected", "dec.closed": "Closed", whichContact: "Which contact was corrected",
    phone: "Phone", email: "Email", note: "Note (required)", submitDecision: "Record the decision",
    decided: "Recorded: {decision}. {outcome}", evidence: "Export the loan's evidence (JSON)",
    borrower: "Borrower", noBorrower: "No borrower record.", timeline: "Notices of this loan",
    state: "State", caseState: "Case state", resolving: "Being resolved as {decision}",
    "health.verified": "verified", "health.bounced": "bounced", "health.opted_out": "opted out",
    "health.ok": "no problem known", thisCase: "this case",
    "ev.status_change": "Status changed to {status} (v{version})",
    "ev.notice_opened": "Notice opened; plan: {plan}",
    "ev.attempt": "Attempt #{attempt}: {channel} via {provider} to {destination}: {result}",
    "ev.receipt": "Receipt for #{attempt} ({channel}): {status}",
    "ev.case_opened": "Review case {case_id} opened: {reason}; due {due_at}",
    "ev.human_action": "{by}: {decision}",
    "ev.delivered": "Confirmed delivered",
    confirmBy: "receipt due by {time}", error: "error: {error}", statusReason: "reason given: {text}",
    deliveryStatus: "delivery status: {status}", failed: "Something went wrong: {message}",
  },
  "zh-CN": {
    title: "人工处理台", language: "语言", signOut: "退出", signInTitle: "登录",
    yourName: "您的姓名", signInLocal: "登录（本地云）",
    pasteToken: "或粘贴身份提供方签发的运营令牌", useToken: "使用此令牌",
    localSignInMissing: "本地登录仅在本地云可用：请粘贴身份提供方签发的令牌。",
    refused: "此令牌无权使用人工处理台（需要运营受众与权限范围）。",
    signedInAs: "当前用户：{name}",
    filterReason: "原因", filterLoan: "贷款", all: "全部",
    "cat.no_channel": "所有渠道均未送达", "cat.borrower_report": "借款人反馈",
    "cat.prepare_failed": "无法生成通知", "cat.borrower_missing": "借款人资料缺失",
    "cat.outcome_unknown": "发送结果未知", "cat.other": "其他",
    "count.open": "待处理", "count.overdue": "已逾期", "count.unassigned": "未认领",
    due: "截止", loan: "贷款", status: "状态", reason: "原因", assignee: "处理人", opened: "创建时间",
    noCases: "没有待处理的案件。", overdue: "已逾期", refreshedAt: "更新于 {time}", nobody: "无",
    back: "返回列表", caseTitle: "案件 {id}", owner: "处理人", take: "认领此案件",
    takenBy: "已由 {name} 认领", youHaveIt: "此案件由您处理", notTaken: "尚无人认领",
    decisionTitle: "处理结果", "dec.reached_by_phone": "已电话告知",
    "dec.contact_corrected": "联系方式已更正", "dec.closed": "关闭", whichContact: "更正了哪项联系方式",
    phone: "手机", email: "邮箱", note: "备注（必填）", submitDecision: "提交处理结果",
    decided: "已记录：{decision}。{outcome}", evidence: "导出该贷款的证据（JSON）",
    borrower: "借款人", noBorrower: "没有借款人记录。", timeline: "该贷款的通知",
    state: "状态", caseState: "案件状态", resolving: "正在按“{decision}”处理",
    "health.verified": "已验证", "health.bounced": "退信", "health.opted_out": "已退订",
    "health.ok": "未发现问题", thisCase: "本案件",
    "ev.status_change": "状态变为 {status}（v{version}）",
    "ev.notice_opened": "生成通知；渠道计划：{plan}",
    "ev.attempt": "第 {attempt} 次发送：{channel}，经 {provider} 发往 {destination}：{result}",
    "ev.receipt": "第 {attempt} 次发送（{channel}）的回执：{status}",
    "ev.case_opened": "创建人工案件 {case_id}：{reason}；截止 {due_at}",
    "ev.human_action": "{by}：{decision}",
    "ev.delivered": "已确认送达",
    confirmBy: "回执截止 {time}", error: "错误：{error}", statusReason: "原因说明：{text}",
    deliveryStatus: "送达状态：{status}", failed: "出错了：{message}",
  },
};

export function chooseLanguage() {
  const saved = localStorage.getItem(LANG_KEY);
  if (LANGUAGES.includes(saved)) return saved;
  for (const wanted of navigator.languages || [navigator.language || ""]) {
    const lower = String(wanted).toLowerCase();
    if (lower.startsWith("zh")) return "zh-CN";
    if (lower.startsWith("en")) return "en-US";
  }
  return "en-US";
}

export function saveLanguage(lang) {
  localStorage.setItem(LANG_KEY, lang);
}

// Parameters are inserted as plain strings; the caller puts the result in textContent, never in HTML.
export function translate(lang, key, params = {}) {
  const text = (MESSAGES[lang] && MESSAGES[lang][key]) || MESSAGES["en-US"][key] || key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (params[name] === undefined || params[name] === null
    ? "-" : String(params[name])));
}
