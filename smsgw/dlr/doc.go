// Package dlr parses SMPP 3.4 delivery receipts: the esm_class receipt flags, the receipted_message_id (0x001E) / message_state (0x0427) / network_error_code (0x0423) TLVs, and the de-facto text form of SMPP 3.4 Appendix B.
//
// A receipt arrives as a deliver_sm (or data_sm) whose esm_class marks it as
// one, or which carries the receipt TLVs. Its text usually reads
//
//	id:IIIIIIIIII sub:SSS dlvrd:DDD submit date:YYMMDDhhmm done date:YYMMDDhhmm stat:DDDDDDD err:E text:...
//
// Carriers disagree on the details (key case, field order, date precision,
// whether ids are hex or decimal), so [ParseText] is tolerant and [IDForms]
// gives the forms under which a message id should be matched.
package dlr
