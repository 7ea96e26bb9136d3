package ui

import (
	"fmt"
	"os"
	"strings"

	"fyne.io/fyne/v2/lang"
)

// Lang is a language of the GUI.
type Lang string

// The GUI's languages.
const (
	English Lang = "en"
	Chinese Lang = "zh" // Simplified Chinese
)

// ParseLang reads "en", "zh", "zh_CN.UTF-8", "zh-Hans", ... ("" when
// neither).
func ParseLang(s string) Lang {
	s = strings.ToLower(strings.TrimSpace(s))
	switch {
	case strings.HasPrefix(s, "zh"):
		return Chinese
	case strings.HasPrefix(s, "en"), s == "c", s == "posix":
		return English
	}
	return ""
}

// SystemLang is the language of the system locale: Simplified Chinese for
// a zh locale, English otherwise.
func SystemLang() Lang {
	for _, env := range []string{"LC_ALL", "LC_MESSAGES", "LANG"} {
		if v := os.Getenv(env); v != "" {
			if l := ParseLang(v); l != "" {
				return l
			}
			return English
		}
	}
	if l := ParseLang(string(lang.SystemLocale())); l != "" {
		return l
	}
	return English
}

// T translates key into l, formatting args into it (fmt verbs). A key
// missing from the table shows as itself, so it is noticed.
func T(l Lang, key string, args ...any) string {
	s, ok := lookup(l, key)
	if !ok {
		s = key
	}
	if len(args) > 0 {
		return fmt.Sprintf(s, args...)
	}
	return s
}

func lookup(l Lang, key string) (string, bool) {
	e, ok := texts[key]
	if !ok {
		return "", false
	}
	if l == Chinese {
		return e.zh, true
	}
	return e.en, true
}

// Keys lists the table's keys (tests).
func Keys() []string {
	out := make([]string, 0, len(texts))
	for k := range texts {
		out = append(out, k)
	}
	return out
}

type text struct{ en, zh string }

// texts is the one translation table: every string the GUI shows.
var texts = map[string]text{
	"app.title": {"KeyStation", "KeyStation 激活工作站"},

	"common.cancel":  {"Cancel", "取消"},
	"common.close":   {"Close", "关闭"},
	"common.details": {"Details…", "详细信息…"},
	"common.sim":     {"sim", "模拟"},

	"nav.pc":       {"This PC", "本机"},
	"nav.batch":    {"Batch (USB)", "批量（U 盘）"},
	"nav.history":  {"History", "历史记录"},
	"nav.settings": {"Settings", "设置"},
	"nav.signout":  {"Sign out", "退出登录"},

	"age.seconds": {"%d s ago", "%d 秒前"},
	"age.minutes": {"%d min ago", "%d 分钟前"},
	"age.hours":   {"%d h ago", "%d 小时前"},
	"age.days":    {"%d days ago", "%d 天前"},

	"status.online":          {"ONLINE", "在线"},
	"status.offline":         {"OFFLINE", "离线"},
	"status.offlineSignIn":   {"OFFLINE – cached sign-in", "离线 – 使用缓存登录"},
	"status.syncing":         {"SYNCING", "同步中"},
	"status.unknown":         {"SERVER NOT CHECKED", "服务器未检查"},
	"status.notEnrolled":     {"NOT ENROLLED", "未注册"},
	"status.lastSync":        {"Last sync %s (%s)", "上次同步 %s（%s）"},
	"status.lastSyncNever":   {"Never synced", "从未同步"},
	"status.outbox":          {"Reports waiting: %d", "待上传报告：%d"},
	"status.outboxAttention": {"Reports waiting: %d, need attention: %d", "待上传报告：%d，需处理：%d"},
	"status.keys":            {"Keys left: %s", "剩余密钥：%s"},
	"status.keyPart":         {"%s %d", "%s %d"},
	"status.keysLow":         {"LOW STOCK: %s", "库存不足：%s"},
	"status.simulation":      {"SIMULATION", "模拟模式"},
	"status.syncNow":         {"Sync now", "立即同步"},
	"status.syncFailed":      {"Sync failed", "同步失败"},
	"status.syncFailedText":  {"The station could not sync with the server. Work goes on offline: keys come from the station's buffer and reports wait in the outbox.\n\n%s", "工作站无法与服务器同步。可以继续离线工作：密钥来自本机缓存，报告在待上传队列中等待。\n\n%s"},

	"signin.title":           {"Sign in", "登录"},
	"signin.station":         {"Station: %s", "工作站：%s"},
	"signin.unnamed":         {"(not enrolled)", "（未注册）"},
	"signin.username":        {"Username", "用户名"},
	"signin.password":        {"Password", "密码"},
	"signin.submit":          {"Sign in", "登录"},
	"signin.missing":         {"Enter your username and password.", "请输入用户名和密码。"},
	"signin.offlineMark":     {"offline", "离线"},
	"signin.offlineNotice":   {"Signed in offline with your last online sign-in (valid until %s). Reports are kept and sent when the server is back.", "已使用上次在线登录的凭据离线登录（有效期至 %s）。报告会保存，服务器恢复后自动上传。"},
	"signin.notEnrolled":     {"This station is not enrolled", "本工作站尚未注册"},
	"signin.notEnrolledText": {"Ask a supervisor for an enrolment token (syncserver stations enrol-token) and enter it with the server's address.", "请向主管索取注册令牌（syncserver stations enrol-token），并与服务器地址一起输入。"},
	"signin.err.refused":     {"Wrong username or password.", "用户名或密码错误。"},
	"signin.err.noCache":     {"The server cannot be reached, and you have not signed in at this station while it was online. Sign in once while the station is online.", "无法连接服务器，且您从未在本工作站在线登录过。请在工作站联网时先登录一次。"},
	"signin.err.expired":     {"The server cannot be reached, and your last online sign-in here is too old. Connect the station to the network and sign in again.", "无法连接服务器，且您在本机上次在线登录已过期。请连接网络后重新登录。"},
	"signin.err.notEnrolled": {"This station is not enrolled yet: enrol it below first.", "本工作站尚未注册：请先在下方完成注册。"},
	"signin.err.rateLimit":   {"Too many failed sign-ins. Wait a minute and try again.", "登录失败次数过多。请稍等一分钟再试。"},
	"signin.err.forbidden":   {"This account may not work at this station. Ask a supervisor.", "此账号无权在本工作站操作。请联系主管。"},
	"signin.err.other":       {"Sign-in failed. See the details.", "登录失败。请查看详细信息。"},

	"pc.hwTitle":        {"This PC", "本机硬件"},
	"pc.edition":        {"Edition", "版本"},
	"pc.editionNote":    {"%s → %s keys", "%s → %s 密钥"},
	"pc.keyTitle":       {"Product key", "产品密钥"},
	"pc.keyLater":       {"A key is taken when you press Activate.", "按下“激活”时取出密钥。"},
	"pc.keyReused":      {"This PC's key from before: the same PC gets the same key.", "本机之前的密钥：同一台电脑使用同一密钥。"},
	"pc.reveal":         {"Show", "显示"},
	"pc.hide":           {"Hide", "隐藏"},
	"pc.firmwareKey":    {"Firmware (OA3) key", "固件（OA3）密钥"},
	"pc.firmwareNote":   {"No key from the pool was used.", "未使用密钥池中的密钥。"},
	"pc.stepsTitle":     {"Steps", "步骤"},
	"pc.activate":       {"Activate this PC", "激活本机"},
	"pc.cancel":         {"Cancel", "取消"},
	"pc.next":           {"Next PC", "下一台电脑"},
	"pc.tryAgain":       {"Try again (same key)", "重试（同一密钥）"},
	"pc.readAgain":      {"Read this PC again", "重新读取本机"},
	"pc.reading":        {"Reading this PC…", "正在读取本机信息…"},
	"pc.ready":          {"Ready", "就绪"},
	"pc.readyText":      {"Press Activate this PC (or Enter).", "请按“激活本机”（或回车键）。"},
	"pc.working":        {"Working…", "正在处理…"},
	"pc.workingText":    {"Do not switch the PC off. Cancel keeps the key with this PC.", "请勿关闭电脑。取消后密钥仍保留给本机。"},
	"pc.ok":             {"ACTIVATED", "激活成功"},
	"pc.okText":         {"Licence status: %s. The report is queued for the server.\nKey %s (%s).", "许可证状态：%s。报告已排队等待上传。\n密钥 %s（%s）。"},
	"pc.okAfterRetries": {"%d key(s) failed first and were replaced automatically.", "有 %d 个密钥先失败，已自动更换。"},
	"pc.simNote":        {"SIMULATION: nothing was installed or activated on this PC.", "模拟模式：本机实际上未安装或激活任何内容。"},
	"pc.pcFault":        {"NOT ACTIVATED – fix the PC", "未激活 – 请检查电脑"},
	"pc.failText":       {"Windows says: %s\nError code: %s\nWhat it means: %s\nWhat to do: %s", "Windows 提示：%s\n错误代码：%s\n含义：%s\n处理方法：%s"},
	"pc.keyKept":        {"Key %s stays with this PC.", "密钥 %s 仍保留给本机。"},
	"pc.retry":          {"Attempt %[1]d: the previous key failed (%[3]s, %[2]s) and was replaced automatically.", "第 %[1]d 次尝试：上一个密钥失败（%[3]s，%[2]s），已自动更换。"},
	"pc.firmware":       {"FIRMWARE KEY – nothing to do", "固件密钥 – 无需操作"},
	"pc.firmwareText":   {"This PC has a Windows key in its firmware (OA3): Windows activates itself with it. No key from the pool was used. Set the PC aside if it should not have one.", "本机固件（OA3）中已有 Windows 密钥，Windows 会自行激活，未使用密钥池中的密钥。如本机不应带有固件密钥，请将其放到一边。"},
	"pc.noKey":          {"NO %s KEY LEFT", "没有剩余的%s密钥"},
	"pc.noKeyText":      {"The station has no key of this edition left. Connect it to the network and sync, or import a key list from a USB stick.", "本工作站已没有该版本的密钥。请连接网络同步，或从 U 盘导入密钥清单。"},
	"pc.burnLimit":      {"NOT ACTIVATED – set this PC aside", "未激活 – 请将本机放到一边"},
	"pc.burnLimitText":  {"Too many keys failed on this PC. Set it aside for a supervisor.", "本机已有过多密钥失败，请交由主管处理。"},
	"pc.cancelled":      {"CANCELLED", "已取消"},
	"pc.cancelledText":  {"Run again on this PC: the same key is used.", "请在本机重新运行：将使用同一密钥。"},
	"pc.cannot":         {"CANNOT ACTIVATE THIS PC", "无法激活本机"},
	"pc.hwErr":          {"The station could not read this PC's hardware: %s\nRun the station as administrator and read the PC again.", "无法读取本机硬件信息：%s\n请以管理员身份运行工作站后重新读取。"},
	"pc.err.machine":    {"The PC's serial number or model cannot be read, and they identify it: %s\nRun the station as administrator. No key was used.", "无法读取电脑的序列号或型号（它们用于识别电脑）：%s\n请以管理员身份运行工作站。未使用任何密钥。"},
	"pc.err.edition":    {"The Windows edition of this PC matches no key pool: %s\nCheck the Windows edition installed. No key was used.", "本机的 Windows 版本不对应任何密钥池：%s\n请检查所安装的 Windows 版本。未使用任何密钥。"},
	"pc.err.other":      {"%s", "%s"},

	"hw.serial":       {"Serial number", "序列号"},
	"hw.model":        {"Model", "型号"},
	"hw.manufacturer": {"Manufacturer", "制造商"},
	"hw.cpu":          {"CPU", "处理器"},
	"hw.memory":       {"Memory", "内存"},
	"hw.memoryText":   {"%s (%d modules)", "%s（%d 条）"},
	"hw.disks":        {"Disks", "硬盘"},
	"hw.os":           {"Windows", "操作系统"},

	"key.id":     {"Key ID", "密钥 ID"},
	"key.key":    {"Key", "密钥"},
	"key.source": {"From", "来源"},

	"source.lease":    {"Station buffer (from the server)", "工作站缓存（来自服务器）"},
	"source.usb":      {"USB key list", "U 盘密钥清单"},
	"source.firmware": {"PC firmware", "电脑固件"},

	"step.check":    {"Check PC", "检查电脑"},
	"step.key":      {"Get key", "获取密钥"},
	"step.install":  {"Install", "安装密钥"},
	"step.activate": {"Activate", "激活"},
	"step.verify":   {"Verify", "验证"},
	"step.report":   {"Report queued", "报告已排队"},

	"license.Licensed":        {"Licensed", "已授权"},
	"license.Unlicensed":      {"Unlicensed", "未授权"},
	"license.OOBGrace":        {"Initial grace period", "初始宽限期"},
	"license.OOTGrace":        {"Grace period", "宽限期"},
	"license.NonGenuineGrace": {"Non-genuine grace period", "非正版宽限期"},
	"license.Notification":    {"Notification", "通知状态"},
	"license.ExtendedGrace":   {"Extended grace period", "延长宽限期"},

	"edition.home": {"Home", "家庭版"},
	"edition.pro":  {"Pro", "专业版"},

	"hint.key_blocked.meaning":      {"The activation server says this product key is blocked.", "激活服务器表示此产品密钥已被封锁。"},
	"hint.key_blocked.fix":          {"Nothing to fix on the PC: a new key is issued.", "电脑无需处理：将换发新密钥。"},
	"hint.key_invalid.meaning":      {"This product key is invalid.", "此产品密钥无效。"},
	"hint.key_invalid.fix":          {"Nothing to fix on the PC: a new key is issued.", "电脑无需处理：将换发新密钥。"},
	"hint.key_used_up.meaning":      {"This product key has reached its activation limit.", "此产品密钥已达到激活次数上限。"},
	"hint.key_used_up.fix":          {"Nothing to fix on the PC: a new key is issued.", "电脑无需处理：将换发新密钥。"},
	"hint.no_kms.meaning":           {"No Key Management Service could be contacted.", "无法联系密钥管理服务（KMS）。"},
	"hint.no_kms.fix":               {"Check the PC's network cable and that it reaches the internet, then try again with the same key.", "请检查电脑网线及能否访问互联网，然后用同一密钥重试。"},
	"hint.dns.meaning":              {"The activation server's name could not be resolved (DNS).", "无法解析激活服务器的域名（DNS）。"},
	"hint.dns.fix":                  {"Check the PC's network and DNS settings, then try again with the same key.", "请检查电脑的网络和 DNS 设置，然后用同一密钥重试。"},
	"hint.clock.meaning":            {"The PC's clock is wrong (a secure connection failed).", "电脑时钟不正确（安全连接失败）。"},
	"hint.clock.fix":                {"Set the PC's date, time and time zone correctly, then try again with the same key.", "请正确设置电脑的日期、时间和时区，然后用同一密钥重试。"},
	"hint.not_elevated.meaning":     {"Access denied: the station is not running as administrator.", "拒绝访问：工作站未以管理员身份运行。"},
	"hint.not_elevated.fix":         {"Close the station and start it again with \"Run as administrator\".", "请关闭工作站，然后用“以管理员身份运行”重新启动。"},
	"hint.no_internet.meaning":      {"The activation server could not be reached (no internet).", "无法连接激活服务器（没有互联网）。"},
	"hint.no_internet.fix":          {"Connect the PC to the internet, then try again with the same key.", "请将电脑连接到互联网，然后用同一密钥重试。"},
	"hint.service_disabled.meaning": {"The Software Protection service is disabled.", "软件保护服务已被禁用。"},
	"hint.service_disabled.fix":     {"Enable the Software Protection service (sppsvc) on the PC, then try again with the same key.", "请在电脑上启用软件保护服务（sppsvc），然后用同一密钥重试。"},
	"hint.wrong_edition.meaning":    {"The installed Windows edition does not accept this kind of key.", "所安装的 Windows 版本不接受此类密钥。"},
	"hint.wrong_edition.fix":        {"Check that the PC has the Windows edition ordered for it, then try again.", "请确认电脑安装的是订单要求的 Windows 版本，然后重试。"},
	"hint.unknown.meaning":          {"The activation failed with an error code the station does not know.", "激活失败，错误代码未知。"},
	"hint.unknown.fix":              {"A new key is issued; a supervisor will review this failure.", "将换发新密钥；主管会复核此失败。"},

	"sim.next":     {"Next result:", "下次结果："},
	"sim.success":  {"Success", "成功"},
	"sim.keyFault": {"Key fault, then success", "密钥故障后成功"},
	"sim.pcFault":  {"PC fault (no KMS)", "电脑故障（无 KMS）"},
	"sim.firmware": {"Firmware key present", "已有固件密钥"},
	"sim.slow":     {"Slow (8 s)", "较慢（8 秒）"},

	"details.outcome":   {"Outcome", "结果"},
	"details.machine":   {"PC", "电脑"},
	"details.driver":    {"Activator", "激活方式"},
	"details.simulated": {"simulated:", "模拟："},
	"details.message":   {"Message", "消息"},
	"details.fix":       {"What to do", "处理方法"},
	"details.try":       {"Try", "尝试"},
	"details.report":    {"Report", "报告"},
	"details.steps":     {"Steps", "步骤"},

	"batch.chooseTitle":  {"Key list on a USB stick", "U 盘上的密钥清单"},
	"batch.chooseText":   {"A CSV or text file: key, optional keyId, optional edition.", "CSV 或文本文件：密钥，可选的 keyId，可选的版本。"},
	"batch.pathHint":     {"Key list file, e.g. /media/usb/keys.csv", "密钥清单文件，例如 /media/usb/keys.csv"},
	"batch.browse":       {"Choose on USB stick…", "从 U 盘选择…"},
	"batch.open":         {"Open", "打开"},
	"batch.edition":      {"Edition of lines without one:", "未注明版本的行："},
	"batch.editionNone":  {"(from the list)", "（以清单为准）"},
	"batch.preview":      {"Preview", "预览"},
	"batch.import":       {"Import and start batch", "导入并开始批量"},
	"batch.previewTitle": {"Preview", "预览"},
	"batch.summary":      {"%s: %d valid keys, %d invalid lines (%d lines)", "%s：%d 个有效密钥，%d 行无效（共 %d 行）"},
	"batch.perEdition":   {"%s: %d", "%s：%d"},
	"batch.invalidTitle": {"Invalid lines", "无效行"},
	"batch.invalidLine":  {"Line %d: %s", "第 %d 行：%s"},
	"batch.noFile":       {"Choose a key list first.", "请先选择密钥清单。"},
	"batch.readErr":      {"The key list cannot be read: %s", "无法读取密钥清单：%s"},
	"batch.importErr":    {"Import failed: %s", "导入失败：%s"},
	"batch.imported":     {"Imported %d keys (%d already on the station, %d invalid lines).", "已导入 %d 个密钥（%d 个已在本机，%d 行无效）。"},
	"batch.already":      {"This key list was imported before: nothing imported again.", "此密钥清单之前已导入：不会重复导入。"},
	"batch.activeTitle":  {"Batch", "批量进度"},
	"batch.activeFile":   {"Batch from %s", "批量：%s"},
	"batch.counts":       {"%d activated, %d keys failed, %d PC faults", "%d 台已激活，%d 个密钥失败，%d 次电脑故障"},
	"batch.left":         {" · %d keys left", " · 剩余 %d 个密钥"},
	"batch.resultsFile":  {"Results file: %s", "结果文件：%s"},
	"batch.resultsErr":   {"The results file could not be written: %s", "无法写入结果文件：%s"},
	"batch.goPC":         {"Go to This PC", "转到本机"},
	"batch.end":          {"End batch", "结束批量"},

	"history.filter":      {"Show:", "显示："},
	"history.all":         {"All", "全部"},
	"history.activated":   {"Activated", "已激活"},
	"history.failed":      {"Failed (key)", "失败（密钥）"},
	"history.pcFault":     {"PC fault", "电脑故障"},
	"history.waiting":     {"Waiting to sync", "等待同步"},
	"history.synced":      {"Synced", "已同步"},
	"history.conflict":    {"Conflict", "冲突"},
	"history.search":      {"Search serial number, model or key ID", "搜索序列号、型号或密钥 ID"},
	"history.reload":      {"Reload", "刷新"},
	"history.count":       {"%d shown", "显示 %d 条"},
	"history.syncNote":    {"Server note", "服务器备注"},
	"history.col.time":    {"Time", "时间"},
	"history.col.sn":      {"Serial number", "序列号"},
	"history.col.model":   {"Model", "型号"},
	"history.col.keyId":   {"Key ID", "密钥 ID"},
	"history.col.key":     {"Key", "密钥"},
	"history.col.result":  {"Result", "结果"},
	"history.col.sync":    {"Sync", "同步"},
	"history.col.message": {"Message", "消息"},

	"outcome.activated": {"activated", "已激活"},
	"outcome.key-fault": {"failed", "失败"},
	"outcome.pc-fault":  {"PC fault", "电脑故障"},
	"sync.waiting":      {"waiting", "等待同步"},
	"sync.synced":       {"synced", "已同步"},
	"sync.conflict":     {"conflict", "冲突"},
	"sync.rejected":     {"rejected", "被拒绝"},

	"settings.serverTitle":     {"Sync server", "同步服务器"},
	"settings.server":          {"Server", "服务器"},
	"settings.test":            {"Test connection", "测试连接"},
	"settings.testing":         {"Testing…", "正在测试…"},
	"settings.testOK":          {"The server answers (%s).", "服务器已响应（%s）。"},
	"settings.testFail":        {"The server does not answer: %s", "服务器无响应：%s"},
	"settings.saveServer":      {"Save address", "保存地址"},
	"settings.saved":           {"Saved.", "已保存。"},
	"settings.saveErr":         {"Not saved: %s", "未保存：%s"},
	"settings.enrolTitle":      {"Station enrolment", "工作站注册"},
	"settings.enrolled":        {"Enrolled as station %d (%s) with %s.", "已注册为工作站 %d（%s），服务器 %s。"},
	"settings.notEnrolled":     {"Not enrolled.", "尚未注册。"},
	"settings.token":           {"Enrolment token", "注册令牌"},
	"settings.tokenHint":       {"Token from a supervisor", "主管提供的令牌"},
	"settings.stationName":     {"Station name", "工作站名称"},
	"settings.stationNameHint": {"e.g. Line 1", "例如 1 号线"},
	"settings.enrol":           {"Enrol", "注册"},
	"settings.enrolling":       {"Enrolling…", "正在注册…"},
	"settings.enrolOK":         {"Enrolled as station %d (%s).", "已注册为工作站 %d（%s）。"},
	"settings.enrolErr":        {"Enrolment failed: %s", "注册失败：%s"},
	"settings.targetsTitle":    {"Key buffer", "密钥缓存"},
	"settings.targetsText":     {"Keys kept on the station per edition; below the low-water mark it syncs at once.", "每个版本在本机保留的密钥数；低于警戒线时立即同步。"},
	"settings.target":          {"Target", "目标"},
	"settings.lowWater":        {"Low water", "警戒线"},
	"settings.saveTargets":     {"Save levels", "保存"},
	"settings.targetsBad":      {"%s: give whole numbers, the low-water mark not above the target.", "%s：请输入整数，警戒线不得高于目标。"},
	"settings.noEditions":      {"No editions known yet: sync first.", "尚无版本信息：请先同步。"},
	"settings.langTitle":       {"Language", "语言"},
	"settings.dataTitle":       {"Data directory and logs", "数据目录与日志"},
	"settings.portable":        {"(portable: on removable media)", "（便携模式：位于可移动存储）"},
	"settings.export":          {"Export logs…", "导出日志…"},
	"settings.exportHere":      {"Export here", "导出到此处"},
	"settings.exported":        {"Logs written to %s", "日志已写入 %s"},
	"settings.exportErr":       {"Logs not exported: %s", "日志导出失败：%s"},
}
