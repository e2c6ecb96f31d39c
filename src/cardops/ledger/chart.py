"""The standard chart of accounts. Other domains post to these codes.

Migration ``0004`` creates these accounts in every database (so a fresh installation can take
a card fee at once); ``ensure_standard_chart`` adds any that are missing later. Sub-ledgers
(one account per card wallet, per merchant, per provider) are opened on demand with
``service.ensure_account`` and roll up into their parent in the trial balance.
"""

from __future__ import annotations

from typing import NamedTuple

from cardops.ledger.models import AccountType


class ChartAccount(NamedTuple):
    code: str
    name_en: str
    name_zh: str
    type: AccountType


CASH = "1001"
BANK = "1002"
PAYMENT_CLEARING = "1003"
RECEIVABLES = "1122"
DEPOSITS_HELD = "2201"
WALLET_FLOAT = "2202"
MERCHANT_PAYABLES = "2203"
PROFIT_SHARES_PAYABLE = "2204"
EQUITY = "4001"
CARD_FEE_INCOME = "6001"
MERCHANT_FEE_INCOME = "6002"
PARKING_INCOME = "6003"
OTHER_INCOME = "6051"
PROFIT_SHARE_EXPENSE = "6601"
BANK_CHARGES = "6602"

STANDARD_CHART: tuple[ChartAccount, ...] = (
    ChartAccount(CASH, "Cash on hand", "库存现金", AccountType.ASSET),
    ChartAccount(BANK, "Bank deposits", "银行存款", AccountType.ASSET),
    ChartAccount(
        PAYMENT_CLEARING,
        "WeChat Pay / Alipay clearing",
        "第三方支付待清算",
        AccountType.ASSET,
    ),
    ChartAccount(RECEIVABLES, "Accounts receivable", "应收账款", AccountType.ASSET),
    ChartAccount(DEPOSITS_HELD, "Customer deposits held", "代收押金", AccountType.LIABILITY),
    ChartAccount(WALLET_FLOAT, "Card wallet float", "卡内储值余额", AccountType.LIABILITY),
    ChartAccount(MERCHANT_PAYABLES, "Merchant payables", "应付商户款", AccountType.LIABILITY),
    ChartAccount(PROFIT_SHARES_PAYABLE, "Profit shares payable", "应付分润", AccountType.LIABILITY),
    ChartAccount(EQUITY, "Paid-in capital", "实收资本", AccountType.EQUITY),
    ChartAccount(CARD_FEE_INCOME, "Card fee income", "工本费收入", AccountType.INCOME),
    ChartAccount(
        MERCHANT_FEE_INCOME, "Merchant service fee income", "商户手续费收入", AccountType.INCOME
    ),
    ChartAccount(PARKING_INCOME, "Parking fee income", "停车费收入", AccountType.INCOME),
    ChartAccount(OTHER_INCOME, "Other income", "其他收入", AccountType.INCOME),
    ChartAccount(PROFIT_SHARE_EXPENSE, "Profit share expense", "分润支出", AccountType.EXPENSE),
    ChartAccount(BANK_CHARGES, "Bank charges", "银行手续费", AccountType.EXPENSE),
)

# Where money taken with each payment method lands when the caller does not say.
DEFAULT_DEBIT = {
    "cash": CASH,
    "card": BANK,
    "transfer": BANK,
    "wechat": PAYMENT_CLEARING,
    "alipay": PAYMENT_CLEARING,
}
