"""Fixed vectors shared with the unit tests (src/auth/password_test.cpp)."""
# Produced by Go's golang.org/x/crypto/bcrypt (the original service's library):
# bcrypt.GenerateFromPassword([]byte("correct horse battery staple"), 10)
GO_BCRYPT_PASSWORD = "correct horse battery staple"
GO_BCRYPT_HASH = "$2a$10$qvuDAALRrdbEewtV/MSdT.eDfAylQrDcD9E8.STGX7U7BnOYU2HAy"
