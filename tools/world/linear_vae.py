"""Sets the weights of a diffusers AutoencoderKLWan (config VAE_CFG in train.py)
so that it is an exact block codec: each latent holds the mean colour of a 4x4
pixel block in each of its 4 frames (12 channels); the decoder repeats it back.

Every residual branch and attention output is zeroed (the blocks become the
identity); the strided convolutions average 2x2 blocks; the temporal
convolutions move even and odd frames into separate channels instead of
mixing them. The two RMS-norm + SiLU heads are made linear by a constant
channel of value K (the norm then divides by ~K) and a tiny gain (SiLU(v) ~ v/2
for |v| ~ 1e-4). The encoder is kept as is; train.py's `decoder` stage then
teaches the decoder to draw sharp shapes from these block colours.
"""
import torch

K = 1000.0     # the constant channel's value
GAIN = 1e-4    # value scale entering each SiLU


def _zero(t):
    with torch.no_grad():
        t.zero_()


def _center3(conv, out_c, in_c, w=1.0):
    # causal Conv3d: taps over [t-2, t-1, t]; index 2 is the current frame
    kt, kh, kw = conv.weight.shape[2:]
    conv.weight.data[out_c, in_c, kt - 1, kh // 2, kw // 2] = w


def build(vae):
    cfg = vae.config
    z = cfg.z_dim
    assert cfg.dim_mult == [1, 2, 4] and list(cfg.temperal_downsample) == [True, True] and z == 12
    assert cfg.num_res_blocks == 1 and not cfg.attn_scales
    with torch.no_grad():
        for p in vae.parameters():
            p.zero_()
        for name, mod in vae.named_modules():  # norm gains inside (now unused) branches stay 1
            if hasattr(mod, "gamma") and isinstance(mod.gamma, torch.nn.Parameter):
                mod.gamma.fill_(1.0)
        enc, dec = vae.encoder, vae.decoder
        # ---- encoder: RGB -> ch 0-2, constant K on the last channel
        c0 = enc.conv_in.weight.shape[0]
        for c in range(3):
            _center3(enc.conv_in, c, c)
        enc.conv_in.bias[c0 - 1] = K
        const = c0 - 1
        signal = 3  # channels carrying colour so far
        for blk in enc.down_blocks:
            if hasattr(blk, "conv_shortcut") and isinstance(blk.conv_shortcut, torch.nn.Conv3d):
                out = blk.conv_shortcut.weight.shape[0]
                for c in range(signal):
                    blk.conv_shortcut.weight[c, c, 0, 0, 0] = 1.0
                blk.conv_shortcut.weight[out - 1, const, 0, 0, 0] = 1.0
                const = out - 1
            if hasattr(blk, "resample"):
                conv = blk.resample[1]
                n = conv.weight.shape[0]
                for c in range(n):
                    for dy in (0, 1):
                        for dx in (0, 1):
                            conv.weight[c, c, dy, dx] = 0.25
                tc = blk.time_conv  # [p, f_even, f_odd] -> even frame in ch c, odd in ch c + signal
                for c in range(signal):
                    tc.weight[c, c, 1, 0, 0] = 1.0
                    tc.weight[signal + c, c, 2, 0, 0] = 1.0
                tc.weight[const, const, 1, 0, 0] = 1.0
                signal *= 2
        assert signal == z
        C = enc.norm_out.gamma.shape[0]
        g = GAIN * K / C ** 0.5
        enc.norm_out.gamma.zero_()
        enc.norm_out.gamma[:z] = g
        for c in range(z):
            _center3(enc.conv_out, c, c, 2.0 / GAIN)
        enc.conv_out.bias[z:] = -20.0  # log-variance: a near-deterministic posterior
        vae.quant_conv.weight[:, :, 0, 0, 0] = torch.eye(2 * z)
        vae.post_quant_conv.weight[:, :, 0, 0, 0] = torch.eye(z)
        # ---- decoder: the reverse path
        c0 = dec.conv_in.weight.shape[0]
        for c in range(z):
            _center3(dec.conv_in, c, c)
        dec.conv_in.bias[c0 - 1] = K
        const, width, signal = c0 - 1, c0, z
        for blk in dec.up_blocks:
            if blk.upsamplers is None:
                continue
            up = blk.upsamplers[0]
            half = signal // 2
            tc = up.time_conv  # out [0:width] -> first frame, [width:2 width] -> second
            for c in range(half):
                tc.weight[c, c, 2, 0, 0] = 1.0
                tc.weight[width + c, half + c, 2, 0, 0] = 1.0
            tc.weight[const, const, 2, 0, 0] = 1.0
            tc.weight[width + const, const, 2, 0, 0] = 1.0
            conv = up.resample[1]
            out = conv.weight.shape[0]
            for c in range(half):
                conv.weight[c, c, 1, 1] = 1.0
            conv.weight[out - 1, const, 1, 1] = 1.0
            const, width, signal = out - 1, out, half
        assert signal == 3
        C = dec.norm_out.gamma.shape[0]
        dec.norm_out.gamma.zero_()
        dec.norm_out.gamma[:3] = GAIN * K / C ** 0.5
        for c in range(3):
            _center3(dec.conv_out, c, c, 2.0 / GAIN)
    return vae
